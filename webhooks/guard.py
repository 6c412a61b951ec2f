"""Server-side request forgery (SSRF) guard for webhook receiver URLs and connector base URLs.

Anyone who can register a webhook endpoint chooses where the hub sends HTTP
requests from inside its network. ``check_url`` rejects URLs whose host is, or
resolves to, an address that is not on the public internet, unless the
operator sets ``HUB_WEBHOOKS_ALLOW_PRIVATE=1`` for receivers on a private
network. Cloud metadata addresses are rejected even then, because they hand
out instance credentials. Connectors use the same guard for the tools'
servers. For them ``HUB_CONNECTORS_ALLOW_PRIVATE=1`` allows private
networks, and the ``CONNECTORS`` purpose makes the messages name that setting.

``check_url`` resolves the host on its own, and the HTTP client resolves it
again when it connects, so a DNS name that changes its answer in between
(DNS rebinding) can pass the check. ``guarded_session`` closes that gap by
checking the address that each new connection actually reached.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]

ALLOW_PRIVATE_ENV = "HUB_WEBHOOKS_ALLOW_PRIVATE"


@dataclass(frozen=True)
class Purpose:
    """The use of a guarded URL, with the names that messages give it."""

    # The URL and a connection to it, such as "Webhook URL" and "Webhook connection".
    url_name: str
    connection_name: str
    # The setting that allows private addresses.
    allow_private_env: str
    # What the URL points at and the server behind it, such as "webhook" and "receiver".
    target_name: str
    server_name: str
    # How to authenticate without a user name and password in the URL.
    credentials_fix: str


WEBHOOKS = Purpose(
    "Webhook URL", "Webhook connection", ALLOW_PRIVATE_ENV, "webhook", "receiver",
    "Remove them from the URL, because the receiver authenticates the hub by the Standard Webhooks "
    "signature of each message (the webhook-signature header).",
)
CONNECTORS = Purpose(
    "Connector base URL", "Connector connection", "HUB_CONNECTORS_ALLOW_PRIVATE", "connection", "tool server",
    "Remove them from base_url and pass them in the connection's credentials.",
)

# Instance metadata services hand out cloud credentials, so no setting allows
# them: AWS, GCP, Azure and others on 169.254.169.254, AWS ECS task metadata on
# 169.254.170.2, AWS IMDS over IPv6 on fd00:ec2::254, Alibaba Cloud on
# 100.100.100.200.
CLOUD_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(text)
    for text in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)

_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
_FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURLError(ValueError):
    """A webhook URL that the hub must not send requests to."""


def check_url(url: str, allow_private: bool, *, resolve: Resolver | None = None, purpose: Purpose = WEBHOOKS) -> None:
    """Check that a webhook URL (or another ``purpose``'s URL) is safe to send requests to.

    Accepts only http and https URLs. The host is resolved with
    ``socket.getaddrinfo`` (or ``resolve``, which returns address strings), and
    every address it resolves to must pass ``address_rejection``, because the
    HTTP client may connect to any of them.

    Raises UnsafeURLError naming the host, the rule it broke and the fix.
    """
    scheme, host, port = _split_url(url, purpose)
    if not allow_private and _is_localhost_name(host):
        # RFC 6761 reserves these names for loopback, so they are rejected
        # without asking a resolver that might be configured differently.
        msg = f"{purpose.url_name} host {host!r} is a loopback name. {_private_fix(purpose)}"
        raise UnsafeURLError(msg)

    literal = _parse_ip(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        addresses = _resolve_addresses(host, port, resolve or resolve_host, purpose)

    for address in addresses:
        reason = address_rejection(address, allow_private)
        if reason is None:
            continue
        if literal is not None:
            subject = f"{purpose.url_name} host {host!r} is"
        else:
            subject = f"{purpose.url_name} host {host!r} resolves to {address}, which is"
        raise UnsafeURLError(_rejection_message(subject, reason, purpose))


def address_rejection(address: IPAddress, allow_private: bool) -> str | None:
    """Return why ``address`` must not receive webhooks, or None if it may.

    The reason is a short phrase such as "a private address". IPv6 forms that
    carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4 and
    Teredo) are judged by the IPv4 address as well, so that, for example,
    ``::ffff:169.254.169.254`` counts as a cloud metadata address.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        # A zone index ("%eth0") takes part in equality, so drop it before
        # comparing with the metadata addresses.
        address = ipaddress.IPv6Address(int(address))
    # Embedded IPv4 addresses are checked first, because for the IPv4-mapped
    # and NAT64 forms they are the host a connection actually reaches.
    candidates = [*_embedded_ipv4(address), address]

    for candidate in candidates:
        if candidate in CLOUD_METADATA_ADDRESSES:
            return "a cloud metadata address"
    if allow_private:
        return None
    for candidate in candidates:
        reason = _non_public_reason(candidate)
        if reason is not None:
            return reason
    return None


def allow_private_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Read ``HUB_WEBHOOKS_ALLOW_PRIVATE`` from the environment.

    "1", "true", "yes" and "on" allow private receivers, while an unset
    variable, an empty string, "0", "false", "no" and "off" do not. Any other
    value raises ValueError, so a typo does not silently flip the setting.
    """
    source = os.environ if environ is None else environ
    raw_value = source.get(ALLOW_PRIVATE_ENV, "")
    value = raw_value.strip().lower()
    if value in _TRUE_VALUES:
        return True
    if value in _FALSE_VALUES:
        return False
    msg = (
        f"{ALLOW_PRIVATE_ENV}={raw_value!r} is invalid. "
        "Use 1, true, yes or on to allow private receivers, or 0, false, no or off to reject them."
    )
    raise ValueError(msg)


def resolve_host(host: str, port: int) -> list[str]:
    """Resolve ``host`` with ``socket.getaddrinfo`` into address strings."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def guarded_session(allow_private: bool, purpose: Purpose = WEBHOOKS) -> requests.Session:
    """Create a ``requests.Session`` that checks every address it connects to.

    Each new connection's peer address goes through ``address_rejection``
    before any request bytes are sent. A rejected connection is closed and
    the request raises UnsafeURLError, whose message names ``purpose``'s
    setting. The session ignores proxy environment variables (``trust_env``
    is False), because through a proxy the peer address would be the proxy's,
    not the receiver's.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(allow_private, purpose)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _private_fix(purpose: Purpose) -> str:
    return f"Set {purpose.allow_private_env}=1 to allow {purpose.server_name}s on a private network or on this host."


def _rejection_message(subject: str, reason: str, purpose: Purpose) -> str:
    if reason == "a cloud metadata address":
        return (
            f"{subject} {reason}, which is rejected even with {purpose.allow_private_env}=1. "
            f"Point the {purpose.target_name} at the {purpose.server_name}'s own host."
        )
    return f"{subject} {reason}. {_private_fix(purpose)}"


def _split_url(url: str, purpose: Purpose) -> tuple[str, str, int]:
    # The messages here leave out the URL itself, because webhook URLs often
    # carry an access token in the path or query.
    if any(char.isspace() or not char.isprintable() or char == "\\" for char in url):
        # Parsers disagree on where the host ends around a backslash (urllib
        # and urllib3 pick different hosts), so the URL is ambiguous.
        msg = (
            f"{purpose.url_name} contains whitespace, a control character or a backslash. "
            "Percent-encode those characters or remove them."
        )
        raise UnsafeURLError(msg)
    try:
        # urllib3 is the parser that requests connects with, so the host
        # checked here is the host the request goes to.
        parsed = parse_url(url)
    except LocationParseError:
        msg = f"{purpose.url_name} is invalid. Use an absolute URL such as https://hooks.example.com/events."
        raise UnsafeURLError(msg) from None

    scheme = (parsed.scheme or "").lower()
    host = (parsed.host or "").strip("[]").lower()
    if scheme not in _SCHEMES:
        subject = f"{purpose.url_name} for host {host!r}" if host else purpose.url_name
        problem = f"has scheme {scheme!r}" if scheme else "has no scheme"
        msg = f"{subject} {problem}. Use an http:// or https:// URL."
        raise UnsafeURLError(msg)
    if not host:
        msg = f"{purpose.url_name} has no host. Use an absolute URL such as https://hooks.example.com/events."
        raise UnsafeURLError(msg)
    if parsed.auth:
        # A URL is shown in listings and stored in events, so credentials in it would leak.
        msg = f"{purpose.url_name} for host {host!r} contains a user name or password. {purpose.credentials_fix}"
        raise UnsafeURLError(msg)
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
    return scheme, host, port


def _is_localhost_name(host: str) -> bool:
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _resolve_addresses(host: str, port: int, resolve: Resolver, purpose: Purpose) -> list[IPAddress]:
    try:
        texts = list(resolve(host, port))
    except socket.gaierror as exc:
        msg = f"{purpose.url_name} host {host!r} could not be resolved ({exc.strerror}). Check the host name."
        raise UnsafeURLError(msg) from None
    except UnicodeError:
        msg = f"{purpose.url_name} host {host!r} is not a valid host name. Check the host name."
        raise UnsafeURLError(msg) from None
    if not texts:
        msg = f"{purpose.url_name} host {host!r} resolved to no addresses. Check the host name."
        raise UnsafeURLError(msg)
    return [ipaddress.ip_address(text) for text in texts]


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if isinstance(address, ipaddress.IPv4Address):
        return []

    embedded: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        embedded.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)
    is_ipv4_compatible = int(address) >> 32 == 0 and int(address) > 1
    if address in _NAT64_PREFIX or is_ipv4_compatible:
        # NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::/96)
        # both keep the IPv4 address in the low 32 bits. RFC 4291 leaves "::"
        # and "::1" out of the IPv4-compatible form.
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded


def _non_public_reason(address: IPAddress) -> str | None:
    # Checked from the most specific rule to the most general, so that
    # 127.0.0.1 is reported as loopback although it is also private.
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        # For example 100.64.0.0/10, the carrier-grade NAT range.
        return "not a globally routable address"
    return None


def _check_peer(sock: socket.socket, allow_private: bool, purpose: Purpose) -> None:
    peer = ipaddress.ip_address(sock.getpeername()[0])
    reason = address_rejection(peer, allow_private)
    if reason is None:
        return
    sock.close()
    subject = f"{purpose.connection_name} reached {peer}, which is"
    raise UnsafeURLError(_rejection_message(subject, reason, purpose))


class _GuardedHTTPConnection(urllib3.connection.HTTPConnection):
    # Subclasses made by _pool_classes set both.
    allow_private = False
    purpose = WEBHOOKS

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.allow_private, self.purpose)
        return sock


class _GuardedHTTPSConnection(urllib3.connection.HTTPSConnection):
    allow_private = False
    purpose = WEBHOOKS

    def _new_conn(self) -> socket.socket:
        # The check runs on the plain TCP socket, before the TLS handshake.
        sock = super()._new_conn()
        _check_peer(sock, self.allow_private, self.purpose)
        return sock


@functools.cache
def _pool_classes(allow_private: bool, purpose: Purpose) -> dict[str, type[urllib3.connectionpool.HTTPConnectionPool]]:
    """Return the connection pool classes by scheme for one setting and purpose, built once."""
    # urllib3 builds connections from a pool's ConnectionCls without extra
    # arguments, so the setting and the purpose travel as class attributes.
    guard = {"allow_private": allow_private, "purpose": purpose}
    http_connection = type("_GuardedHTTPConnection", (_GuardedHTTPConnection,), guard)
    https_connection = type("_GuardedHTTPSConnection", (_GuardedHTTPSConnection,), guard)
    return {
        "http": type("_GuardedHTTPConnectionPool", (urllib3.connectionpool.HTTPConnectionPool,),
                     {"ConnectionCls": http_connection}),
        "https": type("_GuardedHTTPSConnectionPool", (urllib3.connectionpool.HTTPSConnectionPool,),
                      {"ConnectionCls": https_connection}),
    }


class _GuardedAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, allow_private: bool, purpose: Purpose) -> None:
        # Set before the base class builds its pool manager.
        self._allow_private = allow_private
        self._purpose = purpose
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._allow_private, self._purpose)
