import ipaddress
import socket

import pytest

from webhooks.guard import (
    CONNECTORS,
    UnsafeURLError,
    address_rejection,
    allow_private_from_env,
    check_url,
)

PRIVATE_FIX = "Set HUB_WEBHOOKS_ALLOW_PRIVATE=1 to allow receivers on a private network or on this host."
METADATA_FIX = (
    "which is rejected even with HUB_WEBHOOKS_ALLOW_PRIVATE=1. "
    "Point the webhook at the receiver's own host."
)


class RecordingResolver:
    """Resolver that returns fixed addresses and records each lookup, so no test reaches DNS."""

    def __init__(self, *addresses):
        self.addresses = list(addresses)
        self.lookups = []

    def __call__(self, host, port):
        self.lookups.append((host, port))
        return self.addresses


def numeric_only_resolver(host, port):
    # AI_NUMERICHOST makes getaddrinfo parse legacy numeric forms such as
    # "2130706433" the way the HTTP client would, and forbids DNS lookups.
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return [info[4][0] for info in infos]


def rejection_message(url, allow_private, resolve=None):
    with pytest.raises(UnsafeURLError) as excinfo:
        check_url(url, allow_private, resolve=resolve)
    return str(excinfo.value)


def test_private_ip_rejected_by_default():
    message = rejection_message("http://10.0.0.1/hooks", allow_private=False)

    assert message == f"Webhook URL host '10.0.0.1' is a private address. {PRIVATE_FIX}"


def test_private_ip_allowed_with_allow_private():
    check_url("http://10.0.0.1/hooks", allow_private=True)


def test_connector_url_names_connectors_setting():
    with pytest.raises(UnsafeURLError) as excinfo:
        check_url("https://127.0.0.1:8443/api", allow_private=False, purpose=CONNECTORS)

    assert str(excinfo.value) == (
        "Connector base URL host '127.0.0.1' is a loopback address. "
        "Set HUB_CONNECTORS_ALLOW_PRIVATE=1 to allow tool servers on a private network or on this host."
    )


@pytest.mark.parametrize("url", ["https://user:pw@hooks.example.com/in", "https://token@hooks.example.com/in"])
@pytest.mark.parametrize("allow_private", [False, True])
def test_url_with_credentials_rejected(url, allow_private):
    resolver = RecordingResolver("93.184.216.34")

    message = rejection_message(url, allow_private, resolve=resolver)

    assert message.startswith("Webhook URL for host 'hooks.example.com' contains a user name or password. Remove them")
    assert "pw" not in message
    assert "token" not in message
    assert resolver.lookups == []


def test_connector_url_with_credentials_names_base_url():
    with pytest.raises(UnsafeURLError, match="Remove them from base_url and pass them in the connection's credentials"):
        check_url("https://user:pw@example.zendesk.com", allow_private=False, purpose=CONNECTORS)


def test_localhost_rejected_by_default():
    message = rejection_message("http://localhost:8080/hooks", allow_private=False)

    assert message == f"Webhook URL host 'localhost' is a loopback name. {PRIVATE_FIX}"


@pytest.mark.parametrize("host", ["localhost.", "LOCALHOST", "api.localhost"])
def test_localhost_variants_rejected(host):
    message = rejection_message(f"http://{host}/hooks", allow_private=False)

    assert message == f"Webhook URL host {host.lower()!r} is a loopback name. {PRIVATE_FIX}"


def test_localhost_allowed_with_allow_private():
    check_url("http://localhost:8080/hooks", allow_private=True)


def test_loopback_ip_rejected_by_default():
    message = rejection_message("http://127.0.0.1:8080/hooks", allow_private=False)

    assert message == f"Webhook URL host '127.0.0.1' is a loopback address. {PRIVATE_FIX}"


def test_ipv6_loopback_rejected_by_default():
    message = rejection_message("http://[::1]:8080/hooks", allow_private=False)

    assert message == f"Webhook URL host '::1' is a loopback address. {PRIVATE_FIX}"


@pytest.mark.parametrize("allow_private", [False, True])
def test_metadata_ip_rejected_always(allow_private):
    message = rejection_message("http://169.254.169.254/latest/meta-data/", allow_private)

    assert message == f"Webhook URL host '169.254.169.254' is a cloud metadata address, {METADATA_FIX}"


@pytest.mark.parametrize(
    "host",
    [
        "169.254.170.2",
        "100.100.100.200",
        "[fd00:ec2::254]",
        "[fd00:ec2::254%25eth0]",
        "[::ffff:169.254.169.254]",
        "[::ffff:a9fe:aa02]",
        "[::ffff:100.100.100.200]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:a9fe:a9fe::1]",
    ],
)
def test_metadata_forms_rejected_with_allow_private(host):
    message = rejection_message(f"http://{host}/", allow_private=True)

    assert "is a cloud metadata address" in message
    assert message.endswith(METADATA_FIX)


def test_name_resolving_to_metadata_rejected():
    resolver = RecordingResolver("169.254.169.254")

    message = rejection_message("https://metadata.example.test/", allow_private=True, resolve=resolver)

    assert message == (
        "Webhook URL host 'metadata.example.test' resolves to 169.254.169.254, "
        f"which is a cloud metadata address, {METADATA_FIX}"
    )


@pytest.mark.parametrize(
    "url, expected",
    [
        ("ftp://files.example.com/hooks", "Webhook URL for host 'files.example.com' has scheme 'ftp'."),
        ("file:///etc/passwd", "Webhook URL has scheme 'file'."),
        ("gopher://10.0.0.1:70/", "Webhook URL for host '10.0.0.1' has scheme 'gopher'."),
        ("//hooks.example.com/events", "Webhook URL for host 'hooks.example.com' has no scheme."),
    ],
)
def test_non_http_scheme_rejected(url, expected):
    message = rejection_message(url, allow_private=True)

    assert message == f"{expected} Use an http:// or https:// URL."


def test_public_then_private_address_rejected():
    resolver = RecordingResolver("93.184.215.14", "10.1.2.3")

    message = rejection_message("https://hooks.example.test/events", allow_private=False, resolve=resolver)

    assert message == (
        "Webhook URL host 'hooks.example.test' resolves to 10.1.2.3, "
        f"which is a private address. {PRIVATE_FIX}"
    )


def test_public_addresses_accepted():
    resolver = RecordingResolver("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")

    check_url("https://hooks.example.test/events", allow_private=False, resolve=resolver)

    assert resolver.lookups == [("hooks.example.test", 443)]


def test_resolver_gets_explicit_port():
    resolver = RecordingResolver("93.184.215.14")

    check_url("http://hooks.example.test:8080/events", allow_private=False, resolve=resolver)

    assert resolver.lookups == [("hooks.example.test", 8080)]


def test_resolver_gets_default_http_port():
    resolver = RecordingResolver("93.184.215.14")

    check_url("HTTP://hooks.example.test/events", allow_private=False, resolve=resolver)

    assert resolver.lookups == [("hooks.example.test", 80)]


def test_literal_ip_skips_resolver():
    resolver = RecordingResolver("10.0.0.1")

    check_url("https://93.184.215.14/events", allow_private=False, resolve=resolver)

    assert resolver.lookups == []


def test_empty_resolution_rejected():
    message = rejection_message("https://empty.example.test/", allow_private=True, resolve=RecordingResolver())

    assert message == "Webhook URL host 'empty.example.test' resolved to no addresses. Check the host name."


def test_unresolvable_host_rejected():
    def failing_resolver(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    message = rejection_message("https://missing.example.test/", allow_private=True, resolve=failing_resolver)

    assert message == (
        "Webhook URL host 'missing.example.test' could not be resolved "
        "(Name or service not known). Check the host name."
    )


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1"])
def test_legacy_numeric_loopback_rejected(host):
    message = rejection_message(f"http://{host}/", allow_private=False, resolve=numeric_only_resolver)

    assert message == (
        f"Webhook URL host {host!r} resolves to 127.0.0.1, which is a loopback address. {PRIVATE_FIX}"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\\@hooks.example.com/",
        "http://hooks.example.com/ events",
        "http://hooks.example.com/\r\nx-injected: 1",
    ],
)
def test_ambiguous_characters_rejected(url):
    message = rejection_message(url, allow_private=True)

    assert message == (
        "Webhook URL contains whitespace, a control character or a backslash. "
        "Percent-encode those characters or remove them."
    )


def test_missing_host_rejected():
    message = rejection_message("https:///events", allow_private=True)

    assert message == "Webhook URL has no host. Use an absolute URL such as https://hooks.example.com/events."


def test_message_leaves_out_path_and_query():
    message = rejection_message("http://10.0.0.1/services/T000/B000/token-abc?key=secret-123", allow_private=False)

    assert "token-abc" not in message
    assert "secret-123" not in message


@pytest.mark.parametrize(
    "address, expected",
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.255.254", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("240.0.0.1", "a reserved address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("100.64.0.1", "not a globally routable address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("2002:0a00:0001::1", "a private address"),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_rejection_reasons(address, expected):
    assert address_rejection(ipaddress.ip_address(address), allow_private=False) == expected


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "fe80::1", "100.64.0.1", "224.0.0.1"])
def test_address_rejection_allows_private(address):
    assert address_rejection(ipaddress.ip_address(address), allow_private=True) is None


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "Yes", "on", " 1 "])
def test_allow_private_env_true(value):
    assert allow_private_from_env({"HUB_WEBHOOKS_ALLOW_PRIVATE": value}) is True


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off"])
def test_allow_private_env_false(value):
    assert allow_private_from_env({"HUB_WEBHOOKS_ALLOW_PRIVATE": value}) is False


def test_allow_private_env_unset():
    assert allow_private_from_env({}) is False


def test_allow_private_env_reads_os_environ(monkeypatch):
    monkeypatch.setenv("HUB_WEBHOOKS_ALLOW_PRIVATE", "yes")

    assert allow_private_from_env() is True


def test_allow_private_env_rejects_typo():
    with pytest.raises(ValueError) as excinfo:
        allow_private_from_env({"HUB_WEBHOOKS_ALLOW_PRIVATE": "ture"})

    assert str(excinfo.value) == (
        "HUB_WEBHOOKS_ALLOW_PRIVATE='ture' is invalid. "
        "Use 1, true, yes or on to allow private receivers, or 0, false, no or off to reject them."
    )
