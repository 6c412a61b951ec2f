"""Fixtures for the webhook tests: a controllable clock, real receivers on loopback, and a harness."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hub.application import create_application
from hub.domain import Context, Ticket
from hub.secrets import SecretBox, generate_key
from hub.settings import load_settings
from tests.conftest import STORE_KINDS, store_url
from webhooks.guard import resolve_host
from webhooks.service import WebhookService
from webhooks.worker import DeliveryPolicy, WebhookRuntime


class FakeClock:
    """A clock that moves only when a test advances it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(tz=timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it the body waits for the client's delayed ACK of the headers (about 40 ms on Linux).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        server: Any = self.server
        with server.lock:
            server.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            number = len(server.requests)
        status, headers, payload = server.respond(number, body)
        data = payload.encode() if isinstance(payload, str) else payload
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


Response = tuple[int, dict[str, str], str | bytes]


class Receiver:
    """A real HTTP server on 127.0.0.1 that records requests and responds from a script.

    ``respond(number, body)`` returns ``(status, headers, body)`` for the
    ``number``-th request (from 1).
    """

    def __init__(self, respond: Callable[[int, bytes], Response] | None = None, port: int = 0) -> None:
        self.server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.server.daemon_threads = True
        self.server.requests = []
        self.server.lock = threading.Lock()
        self.server.respond = respond or (lambda number, body: (200, {}, "ok"))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.server.requests

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(respond: Callable[[int, bytes], Response] | None = None, port: int = 0) -> Receiver:
        started.append(Receiver(respond, port))
        return started[-1]

    yield start
    for receiver in started:
        try:
            receiver.stop()
        except OSError:
            pass


# example.com's address: public, so it passes the SSRF guard; no test sends anything to it.
PUBLIC_ADDRESS = "93.184.215.14"


def resolve_example_hosts(host: str, port: int) -> list[str]:
    """Resolve hooks.example.com names to a public address without DNS, and others as usual."""
    if host == "example.com" or host.endswith(".example.com"):
        return [PUBLIC_ADDRESS]
    return resolve_host(host, port)


# A short schedule keeps every attempt of a test within the five minutes that
# the standardwebhooks verifier accepts around the real time.
SHORT_SCHEDULE = (5.0, 10.0, 20.0)


class Harness:
    """The hub application, the webhook runtime without its threads, and the service, on one clock."""

    def __init__(self, environ: dict[str, str], extra: dict[str, str], policy: DeliveryPolicy) -> None:
        self.clock = FakeClock()
        self.settings = load_settings({**environ, "HUB_WEBHOOKS_ALLOW_PRIVATE": "1", "HUB_CIPHER_KEY": generate_key()})
        self.app = create_application(self.settings, **extra)
        self.box = SecretBox(self.settings.cipher_key or "")
        self.runtime = WebhookRuntime(
            self.app, settings=self.settings, clock=self.clock, policy=policy, secret_box=self.box,
        )
        self.runtime.setup()
        self.worker = self.runtime.worker
        self.worker.rng.seed(7)
        self.outbox = self.runtime.outbox
        self.service = WebhookService(
            self.app, self.outbox, self.box, allow_private=True, clock=self.clock, wake=self.dispatch,
            resolve=resolve_example_hosts,
        )

    def dispatch(self) -> int:
        return self.runtime.dispatcher.catch_up()

    def deliver(self) -> int:
        """Dispatch new events, then run worker passes until nothing is due at the current time."""
        self.dispatch()
        total = 0
        while True:
            attempts = self.worker.run_once()
            if not attempts:
                return total
            total += attempts

    def subscribe(self, url: str, event_types: list[str] | None = None) -> tuple[str, str]:
        endpoint, secret = self.service.create_endpoint(
            Context(actor_kind="agent", actor_id="ops-lead"), url=url, event_types=event_types or ["*"],
        )
        return str(endpoint.id), secret

    def open_ticket(self, subject: str = "Checkout fails with error 500", occurred_at: Any = None) -> Any:
        outcome = self.app.open_ticket(
            Context(actor_kind="requester", actor_id="req-1", source_name="email", occurred_at=occurred_at),
            subject=subject, channel="email",
        )
        return outcome.aggregate.id

    def escalate(self, ticket_id: Any) -> int:
        outcome = self.app.execute(
            Ticket, ticket_id, "escalate", Context(actor_kind="agent", actor_id="agent-7"),
            level=2, reason="Client is losing orders", owner="team-lead",
            promised_by=datetime(2030, 1, 1, tzinfo=timezone.utc),
        )
        return outcome.last_position

    def messages(self, endpoint_id: str) -> list[dict[str, Any]]:
        return self.outbox.deliveries(endpoint_id, limit=1000)

    def close(self) -> None:
        self.worker.close()
        self.runtime.db.close()
        self.app.close()


@pytest.fixture
def make_harness(tmp_path) -> Iterator[Callable[..., Harness]]:
    harnesses: list[Harness] = []

    def make(
        kind: str = "sqlite-file", extra: dict[str, str] | None = None, policy: DeliveryPolicy | None = None
    ) -> Harness:
        environ = {"HUB_DATABASE_URL": store_url(kind, tmp_path)}
        harnesses.append(Harness(environ, extra or {}, policy or DeliveryPolicy(schedule=SHORT_SCHEDULE)))
        return harnesses[-1]

    yield make
    for harness in harnesses:
        harness.close()


@pytest.fixture
def harness(make_harness) -> Harness:
    return make_harness()


@pytest.fixture(params=STORE_KINDS)
def store_harness(request, make_harness) -> Harness:
    """A harness on each kind of store: SQLite file, shared in-memory SQLite, PostgreSQL."""
    extra: dict[str, str] = {}
    if request.param == "postgresql":
        extra["POSTGRES_SCHEMA"] = request.getfixturevalue("postgres_schema")
    return make_harness(request.param, extra)
