"""Tests for the shared connector HTTP policy in connectors.http."""

from __future__ import annotations

import logging
import socket
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses
from responses import matchers
from responses.registries import OrderedRegistry

from connectors.http import (
    BearerAuth,
    ConnectorAuthError,
    ConnectorClient,
    FatalAPIError,
    PaginationGuard,
    PaginationLoopError,
    RetriableAPIError,
    RetriesExhaustedError,
    RetryPolicy,
    UnexpectedResponseError,
    classify_response,
    parse_retry_after,
)

BASE_URL = "https://api.example.com"
START = datetime(2024, 3, 5, 10, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """Clock whose time moves only when the code under test sleeps."""

    def __init__(self, now: datetime = START) -> None:
        self.current = now
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)


class FixedRandom:
    """Random source that always returns the same value, for exact jitter."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def make_client(clock: FakeClock, base_url: str = BASE_URL, **kwargs) -> ConnectorClient:
    kwargs.setdefault("rng", FixedRandom(0.5))
    return ConnectorClient(
        base_url,
        connection_id="conn-7",
        connection_name="Acme support",
        auth=("agent@example.com/token", "s3cr3t-token"),
        clock=clock,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "ok"),
        (201, "ok"),
        (204, "ok"),
        (304, "fatal"),
        (400, "fatal"),
        (401, "auth"),
        (403, "auth"),
        (404, "fatal"),
        (409, "fatal"),
        (422, "fatal"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
    ],
)
def test_classify_response(status, expected):
    assert classify_response(status) == expected


@pytest.mark.parametrize(
    ("retry_number", "base_delay", "max_delay", "jitter", "random_value", "expected"),
    [
        # 1 s doubled per retry, then reduced by jitter * random = 0.25 of itself.
        (1, 1.0, 60.0, 0.5, 0.5, 0.75),
        (2, 1.0, 60.0, 0.5, 0.5, 1.5),
        (3, 1.0, 60.0, 0.5, 0.5, 3.0),
        # 10 * 2**2 = 40 is capped at 15; no jitter when random returns 0.
        (3, 10.0, 15.0, 0.5, 0.0, 15.0),
        (1, 2.0, 60.0, 0.0, 0.9, 2.0),
    ],
)
def test_backoff_schedule(retry_number, base_delay, max_delay, jitter, random_value, expected):
    policy = RetryPolicy(base_delay=base_delay, max_delay=max_delay, jitter=jitter)

    assert policy.backoff(retry_number, FixedRandom(random_value)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("24", 24.0),
        (" 120 ", 120.0),
        ("Tue, 05 Mar 2024 10:00:30 GMT", 30.0),
        ("Tue, 05 Mar 2024 09:59:00 GMT", 0.0),
        ("soon", None),
        (None, None),
        # Superscript two and Arabic-Indic digits pass str.isdigit(); float() rejects or reads them.
        ("\u00b2", None),
        ("\u0663\u0660", None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, START) == expected


def test_retry_policy_rejects_zero_attempts():
    with pytest.raises(ValueError, match="max_attempts must be at least 1, got 0"):
        RetryPolicy(max_attempts=0)


@responses.activate(registry=OrderedRegistry)
def test_429_text_body_sleeps_retry_after():
    responses.get(
        f"{BASE_URL}/api/items",
        status=429,
        body="Too Many Requests",
        content_type="text/plain",
        headers={"Retry-After": "24"},
    )
    responses.get(f"{BASE_URL}/api/items", json={"items": [1, 2]})
    clock = FakeClock()

    payload = make_client(clock).get_json("/api/items")

    assert payload == {"items": [1, 2]}
    assert clock.sleeps == [24.0]
    assert len(responses.calls) == 2


@responses.activate(registry=OrderedRegistry)
def test_retry_after_http_date_is_honoured():
    responses.get(
        f"{BASE_URL}/api/items",
        status=503,
        headers={"Retry-After": "Tue, 05 Mar 2024 10:00:30 GMT"},
    )
    responses.get(f"{BASE_URL}/api/items", json={})
    clock = FakeClock()

    make_client(clock).get_json("/api/items")

    assert clock.sleeps == [30.0]


@responses.activate(registry=OrderedRegistry)
def test_5xx_backs_off_exponentially_with_jitter():
    responses.get(f"{BASE_URL}/api/items", status=503)
    responses.get(f"{BASE_URL}/api/items", status=502)
    responses.get(f"{BASE_URL}/api/items", json={"ok": True})
    clock = FakeClock()

    payload = make_client(clock).get_json("/api/items")

    assert payload == {"ok": True}
    # base 1 s and 2 s, each reduced by 0.5 jitter * 0.5 random = 25 %.
    assert clock.sleeps == pytest.approx([0.75, 1.5])


@responses.activate(registry=OrderedRegistry)
def test_retries_exhausted_reports_attempts():
    for _ in range(3):
        responses.get(f"{BASE_URL}/api/items", status=500)
    clock = FakeClock()
    client = make_client(clock, retry_policy=RetryPolicy(max_attempts=3))

    with pytest.raises(RetriesExhaustedError, match="after 3 attempts") as caught:
        client.get_json("/api/items")

    assert isinstance(caught.value, RetriableAPIError)
    assert caught.value.attempts == 3
    assert caught.value.status == 500
    assert caught.value.connection_id == "conn-7"
    assert len(responses.calls) == 3
    assert len(clock.sleeps) == 2


@responses.activate(registry=OrderedRegistry)
def test_connection_error_is_retried_for_get():
    responses.get(f"{BASE_URL}/api/items", body=requests.ConnectionError("connection reset by peer"))
    responses.get(f"{BASE_URL}/api/items", json={"ok": True})
    clock = FakeClock()

    payload = make_client(clock).get_json("/api/items")

    assert payload == {"ok": True}
    assert clock.sleeps == pytest.approx([0.75])
    assert len(responses.calls) == 2


@responses.activate
def test_401_message_names_connection_not_secret():
    responses.get(f"{BASE_URL}/api/v2/tickets.json", status=401, json={"error": "Couldn't authenticate you"})
    client = make_client(FakeClock())

    with pytest.raises(ConnectorAuthError) as caught:
        client.get_json("/api/v2/tickets.json")

    message = str(caught.value)
    assert "'Acme support' (id conn-7)" in message
    assert "401 Unauthorized on GET /api/v2/tickets.json" in message
    assert "check the credentials configured for this connection" in message
    assert "s3cr3t-token" not in message
    assert "agent@example.com" not in message
    assert len(responses.calls) == 1


@responses.activate
def test_403_message_points_at_permissions():
    responses.get(f"{BASE_URL}/api/v2/slas/policies.json", status=403)
    client = make_client(FakeClock())

    with pytest.raises(ConnectorAuthError, match=r"denied connection 'Acme support' \(id conn-7\)") as caught:
        client.get_json("/api/v2/slas/policies.json")

    assert caught.value.status == 403
    assert "check the account's role and permissions for this endpoint" in str(caught.value)


@responses.activate
def test_404_raises_fatal_with_status_reason_path():
    responses.get(f"{BASE_URL}/api/v2/tickets/99.json", status=404, json={"error": "RecordNotFound"})
    client = make_client(FakeClock())

    with pytest.raises(FatalAPIError) as caught:
        client.get_json("/api/v2/tickets/99.json", params={"include": "users"})

    error = caught.value
    assert not isinstance(error, ConnectorAuthError)
    assert error.status == 404
    assert error.reason == "Not Found"
    assert error.path == "/api/v2/tickets/99.json"
    assert "returned 404 Not Found for GET /api/v2/tickets/99.json" in str(error)
    assert "include=users" not in str(error)
    assert len(responses.calls) == 1


@responses.activate
def test_post_not_retried_after_503():
    responses.post(f"{BASE_URL}/api/replies", status=503)
    clock = FakeClock()

    with pytest.raises(RetriableAPIError, match="it was not repeated") as caught:
        make_client(clock).send_json("POST", "/api/replies", {"body": "Hello"})

    assert not isinstance(caught.value, RetriesExhaustedError)
    assert caught.value.attempts == 1
    assert clock.sleeps == []
    assert len(responses.calls) == 1


@responses.activate(registry=OrderedRegistry)
def test_post_retried_after_429():
    responses.post(f"{BASE_URL}/api/replies", status=429, headers={"Retry-After": "3"})
    responses.post(f"{BASE_URL}/api/replies", status=201, json={"id": 5})
    clock = FakeClock()

    payload = make_client(clock).send_json("POST", "/api/replies", {"body": "Hello"})

    assert payload == {"id": 5}
    assert clock.sleeps == [3.0]


def test_post_retried_when_connection_refused():
    # Bind and release a loopback port so that connecting to it is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeClock()
    client = make_client(
        clock,
        base_url=f"http://127.0.0.1:{port}",
        retry_policy=RetryPolicy(max_attempts=2),
        timeout=(1.0, 1.0),
    )

    with pytest.raises(RetriesExhaustedError, match="connection error") as caught:
        client.send_json("POST", "/api/replies", {"body": "Hello"})

    assert caught.value.attempts == 2
    assert clock.sleeps == pytest.approx([0.75])


@responses.activate
def test_long_retry_after_fails_without_waiting():
    responses.get(f"{BASE_URL}/api/items", status=429, headers={"Retry-After": "3600"})
    clock = FakeClock()
    client = make_client(clock, retry_policy=RetryPolicy(max_retry_after=900.0))

    with pytest.raises(RetriableAPIError, match="asked to wait 3600 s"):
        client.get_json("/api/items")

    assert clock.sleeps == []


@responses.activate(registry=OrderedRegistry)
def test_retry_logged_at_warning(caplog):
    responses.get(f"{BASE_URL}/api/items", status=503)
    responses.get(f"{BASE_URL}/api/items", json={})
    caplog.set_level(logging.WARNING, logger="connectors.http")

    make_client(FakeClock()).get_json("/api/items")

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "Retrying GET /api/items for connection conn-7: attempt 1 of 5 failed with "
        "503 Service Unavailable; waiting 0.8 s"
    )


@responses.activate
def test_timeout_passed_on_every_request():
    responses.get(f"{BASE_URL}/api/items", json={})
    client = make_client(FakeClock(), timeout=(2.0, 12.0))

    client.get_json("/api/items")

    assert responses.calls[0].request.req_kwargs["timeout"] == (2.0, 12.0)


@responses.activate
def test_non_json_success_body_raises():
    responses.get(f"{BASE_URL}/api/items", body="<html>login</html>", content_type="text/html")
    client = make_client(FakeClock())

    with pytest.raises(UnexpectedResponseError, match="Content-Type 'text/html'"):
        client.get_json("/api/items")


@responses.activate
def test_bearer_auth_sets_header():
    responses.get(
        f"{BASE_URL}/api/items",
        json={},
        match=[matchers.header_matcher({"Authorization": "Bearer oauth-token-9"})],
    )
    client = ConnectorClient(BASE_URL, connection_id="conn-8", auth=BearerAuth("oauth-token-9"), clock=FakeClock())

    client.get_json("/api/items")

    assert len(responses.calls) == 1


def test_bearer_auth_repr_hides_token():
    assert "oauth-token-9" not in repr(BearerAuth("oauth-token-9"))


def test_pagination_guard_rejects_repeated_token():
    guard = PaginationGuard(make_client(FakeClock()), "/api/items")
    guard.check("cursor-a")
    guard.check("cursor-b")

    with pytest.raises(PaginationLoopError, match="'cursor-b' twice in a row for /api/items"):
        guard.check("cursor-b")


def test_plain_http_rejected_off_loopback():
    with pytest.raises(ValueError, match="uses plain http"):
        ConnectorClient("http://example.zendesk.com", connection_id="conn-1")


def test_plain_http_allowed_on_loopback():
    client = ConnectorClient("http://127.0.0.1:8080/", connection_id="conn-1")

    assert client.base_url == "http://127.0.0.1:8080"
