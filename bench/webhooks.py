"""Benchmark webhook delivery: deliveries per second and event-to-delivery latency.

Usage::

    python bench/webhooks.py                            # 1, 10 and 100 endpoints on SQLite
    python bench/webhooks.py --endpoints 10 --messages 2000
    python bench/webhooks.py --database-url postgresql://postgres@127.0.0.1:5432/test

For each endpoint count, on a new store, the script subscribes that many
endpoints to ``ticket.opened``. Each endpoint is its own URL on one HTTP
receiver on 127.0.0.1 that returns 200 at once. The script then starts the
embedded runtime (the dispatch view and one delivery worker on threads, as
``hub serve`` runs them) and measures:

1. throughput: it records ``--messages / endpoints`` tickets, 100 per
   transaction, and times from the first save to the last delivery received,
   so the figure covers dispatch, signing, HTTP and bookkeeping;
2. latency: it records ``--latency-events`` tickets one at a time, spaced so
   that at most ``--latency-rate`` deliveries per second are due (below the
   throughput, so the figure is not queueing time), and measures each delivery
   from just before the ticket's save to its arrival at the receiver. In
   "woken" mode the script wakes the runtime after each save, as the API does
   after a write. In "polling" mode it does not, so on SQLite the poll
   interval (0.25 s) bounds how late the runtime notices; on PostgreSQL the
   dispatch runner is woken by LISTEN/NOTIFY in both modes.

One delivery in 50 is checked with the ``standardwebhooks`` verifier.
"""

from __future__ import annotations

import argparse
import http.server
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from standardwebhooks import Webhook  # noqa: E402

from hub.application import create_application  # noqa: E402
from hub.domain import Context, Ticket  # noqa: E402
from hub.secrets import SecretBox, generate_key  # noqa: E402
from hub.settings import load_settings  # noqa: E402
from webhooks.service import WebhookService  # noqa: E402
from webhooks.worker import DeliveryPolicy, WebhookRuntime, policy_from_env  # noqa: E402


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it the body waits for the client's delayed ACK of the headers (about 40 ms on Linux).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        arrived = time.time()
        server: Any = self.server
        server.record(self.path, dict(self.headers.items()), body, arrived)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    """One HTTP server on loopback; each endpoint posts to its own path."""

    def __init__(self) -> None:
        self.server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.record = self.record
        self.lock = threading.Lock()
        self.arrivals: list[tuple[str, float]] = []
        self.samples: list[tuple[str, dict[str, str], bytes]] = []
        self.done = threading.Condition(self.lock)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def record(self, path: str, headers: dict[str, str], body: bytes, arrived: float) -> None:
        subject = body.split(b'"subject":"', 1)[1].split(b'"', 1)[0].decode()
        with self.lock:
            self.arrivals.append((subject, arrived))
            if len(self.arrivals) % 50 == 1:
                self.samples.append((path, headers, body))
            self.done.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.arrivals) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.done.wait(remaining)
        return True

    def reset(self) -> None:
        with self.lock:
            self.arrivals.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run_case(args: argparse.Namespace, endpoint_count: int, workdir: Path) -> dict[str, Any]:
    if args.database_url.startswith("postgresql"):
        database_url = args.database_url
        extra = {"POSTGRES_SCHEMA": _new_schema(args.database_url)}
    else:
        database_url = f"sqlite:///{workdir}/hub-{endpoint_count}.sqlite3"
        extra = {}
    settings = load_settings({"HUB_DATABASE_URL": database_url, "HUB_WEBHOOKS_ALLOW_PRIVATE": "1"})
    app = create_application(settings, **extra)
    box = SecretBox(generate_key())
    policy = policy_from_env()
    if args.concurrency:
        policy = DeliveryPolicy(concurrency=args.concurrency)
    runtime = WebhookRuntime(app, settings=settings, secret_box=box, policy=policy, allow_private=True)
    runtime.setup()
    service = WebhookService(app, runtime.outbox, box, allow_private=True, wake=runtime.dispatcher.catch_up)
    receiver = Receiver()
    secrets: dict[str, str] = {}
    ctx = Context(actor_kind="agent", actor_id="bench", source_name="bench")
    for number in range(endpoint_count):
        path = f"/endpoint/{number}"
        _, secret = service.create_endpoint(ctx, url=receiver.url(path), event_types=["ticket.opened"])
        secrets[path] = secret
    runtime.start()
    result: dict[str, Any] = {"endpoints": endpoint_count, "concurrency": policy.concurrency}
    try:
        # Throughput.
        events = max(1, args.messages // endpoint_count)
        expected = events * endpoint_count
        started = time.perf_counter()
        for first in range(0, events, 100):
            tickets = [
                Ticket.open(ctx, ticket_id=uuid.uuid4(), subject=f"throughput-{number}", channel="api")
                for number in range(first, min(first + 100, events))
            ]
            app.save_batch(tickets)
            runtime.wake()
        complete = receiver.wait_for(expected, args.timeout)
        elapsed = time.perf_counter() - started
        result["messages"] = expected
        result["deliveries_per_second"] = len(receiver.arrivals) / elapsed if complete else None
        result["throughput_seconds"] = elapsed

        # Latency, woken and polling.
        interval = max(0.02, endpoint_count / args.latency_rate)
        for mode in ("woken", "polling"):
            receiver.reset()
            saved_at: dict[str, float] = {}
            for number in range(args.latency_events):
                subject = f"{mode}-{number}-{uuid.uuid4().hex[:6]}"
                saved_at[subject] = time.time()
                app.open_ticket(ctx, subject=subject, channel="api")
                if mode == "woken":
                    runtime.wake()
                time.sleep(interval)
            receiver.wait_for(args.latency_events * endpoint_count, args.timeout)
            latencies = [(arrived - saved_at[subject]) * 1000 for subject, arrived in receiver.arrivals]
            result[f"{mode}_p50_ms"] = statistics.median(latencies)
            result[f"{mode}_p99_ms"] = percentile(latencies, 0.99)
            result[f"{mode}_deliveries"] = len(latencies)

        for path, headers, body in receiver.samples:
            Webhook(secrets[path]).verify(body, {name.lower(): value for name, value in headers.items()})
        result["verified_samples"] = len(receiver.samples)
    finally:
        runtime.stop()
        receiver.stop()
        app.close()
        if "POSTGRES_SCHEMA" in extra:
            _drop_schema(args.database_url, extra["POSTGRES_SCHEMA"])
    return result


def _new_schema(database_url: str) -> str:
    import psycopg

    schema = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop_schema(database_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, action="append", help="endpoint counts (default: 1, 10 and 100)")
    parser.add_argument("--messages", type=int, default=3000, help="messages in the throughput run (default: 3000)")
    parser.add_argument("--latency-events", type=int, default=60, help="tickets in each latency run (default: 60)")
    parser.add_argument(
        "--latency-rate", type=float, default=100.0,
        help="deliveries per second offered in the latency runs (default: 100)",
    )
    parser.add_argument("--concurrency", type=int, help="attempts sent at once by the worker (default: 8)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for deliveries (default: 600)")
    parser.add_argument(
        "--database-url", default="sqlite", help="a postgresql:// URL, or sqlite for a new file (default)"
    )
    args = parser.parse_args()

    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; store: {'PostgreSQL' if args.database_url.startswith('postgresql') else 'SQLite file'}"
    )
    header = (
        f"{'endpoints':>9} {'messages':>8} {'deliv/s':>8} "
        f"{'woken p50':>10} {'woken p99':>10} {'poll p50':>9} {'poll p99':>9} {'checked':>7}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as folder:
        for count in args.endpoints or [1, 10, 100]:
            row = run_case(args, count, Path(folder))
            rate = row["deliveries_per_second"]
            print(
                f"{row['endpoints']:>9} {row['messages']:>8} {rate if rate is None else f'{rate:8.0f}':>8} "
                f"{row['woken_p50_ms']:>8.0f}ms {row['woken_p99_ms']:>8.0f}ms "
                f"{row['polling_p50_ms']:>7.0f}ms {row['polling_p99_ms']:>7.0f}ms {row['verified_samples']:>7}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
