"""``hub webhooks``: run the delivery worker, and manage endpoints from the shell.

``hub webhooks work`` is the production delivery process: it applies the
dispatch view and sends due messages until SIGTERM or Ctrl-C. Several may run
at once. On PostgreSQL they share messages through row locks, and on SQLite
the database lock keeps two workers from claiming the same message.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hub.application import create_application
from hub.cli.common import (
    UsageError,
    add_format_option,
    aware_datetime_argument,
    positive_int_argument,
    print_rows,
    uuid_argument,
)
from hub.domain import Context
from hub.secrets import load_secret_box
from hub.settings import load_settings
from projections.db import Database
from webhooks.outbox import MESSAGE_STATES, Outbox, ReplayTooLargeError, WebhookDispatchView
from webhooks.service import WebhookService
from webhooks.worker import DispatchRunner, WebhookRuntime

logger = logging.getLogger(__name__)

CLI_CONTEXT = Context(actor_kind="system", actor_id="hub-cli", source_name="cli")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "webhooks", help="deliver webhooks and manage webhook endpoints",
        description="Run the webhook delivery worker, or list, create and inspect webhook endpoints.",
    )
    commands = parser.add_subparsers(dest="webhooks_command", metavar="COMMAND")
    commands.required = True

    work = commands.add_parser(
        "work", help="dispatch events and deliver messages until stopped",
        description="Apply the webhook dispatch view and send due messages, until SIGTERM or Ctrl-C.",
    )
    work.add_argument(
        "--poll-interval", type=float, default=0.25,
        help="seconds between looks for new events and due messages when idle (default: 0.25)",
    )
    work.add_argument("--once", action="store_true", help="dispatch and send what is due now, then exit")
    work.set_defaults(handler=run_work)

    listing = commands.add_parser("list", help="list endpoints (never their secrets)")
    add_format_option(listing, ("table", "json", "csv"))
    listing.set_defaults(handler=run_list)

    create = commands.add_parser(
        "create", help="subscribe a URL and print its secret once",
        description="Subscribe a URL to event types and print the endpoint id and its signing secret. "
        "The secret is not shown again; rotate it through the API if it is lost.",
    )
    create.add_argument("--url", required=True, help="the receiver's http or https URL")
    create.add_argument(
        "--event-type", action="append", required=True, dest="event_types",
        help='an event type such as ticket.escalated, a kind such as "ticket.*", or "*" (repeatable)',
    )
    create.add_argument("--description", help="what the endpoint is for")
    create.set_defaults(handler=run_create)

    deliveries = commands.add_parser("deliveries", help="list an endpoint's messages and attempts, newest first")
    deliveries.add_argument("endpoint_id", type=uuid_argument, help="the endpoint id")
    deliveries.add_argument("--state", choices=MESSAGE_STATES, help="only messages in this state")
    deliveries.add_argument("--limit", type=positive_int_argument, default=50, help="messages listed (default: 50)")
    add_format_option(deliveries, ("table", "json"))
    deliveries.set_defaults(handler=run_deliveries)

    replay = commands.add_parser(
        "replay", help="deliver again every matching event recorded in a time window",
    )
    replay.add_argument("endpoint_id", type=uuid_argument, help="the endpoint id")
    replay.add_argument("--since", type=aware_datetime_argument, required=True, help="window start, ISO 8601 with offset")
    replay.add_argument("--until", type=aware_datetime_argument, required=True, help="window end, inclusive")
    replay.set_defaults(handler=run_replay)

    test = commands.add_parser("test", help="queue an endpoint.test message for an endpoint")
    test.add_argument("endpoint_id", type=uuid_argument, help="the endpoint id")
    test.set_defaults(handler=run_test)


@contextmanager
def _service() -> Iterator[WebhookService]:
    settings = load_settings()
    app = create_application(settings)
    db = Database.for_application(app)
    try:
        outbox = Outbox(app, db)
        outbox.setup()
        dispatcher = DispatchRunner(app, WebhookDispatchView(), db)
        dispatcher.setup()
        yield WebhookService(
            app, outbox, load_secret_box(settings), allow_private=settings.webhooks_allow_private,
            wake=dispatcher.catch_up,
        )
    finally:
        db.close()
        app.close()


def run_work(args: argparse.Namespace) -> int:
    if args.poll_interval <= 0:
        msg = f"--poll-interval {args.poll_interval} is invalid; use a positive number of seconds"
        raise UsageError(msg)
    settings = load_settings()
    app = create_application(settings)
    runtime = WebhookRuntime(app, settings=settings, poll_interval=args.poll_interval)
    try:
        if args.once:
            runtime.setup()
            runtime.dispatcher.catch_up()
            attempts = 0
            while sent := runtime.worker.run_once():
                attempts += sent
            print(f"Made {attempts} delivery attempts")
            return 0

        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            logger.info("Webhook worker received signal %d; stopping after the current attempts", signum)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        runtime.start()
        stop.wait()
        return 0
    finally:
        runtime.stop()
        app.close()


def run_list(args: argparse.Namespace) -> int:
    with _service() as service:
        rows = service.list_endpoints()
    columns = ("id", "status", "url", "event_types", "description", "disabled_reason")
    print_rows(rows, args.format, columns)
    return 0


def run_create(args: argparse.Namespace) -> int:
    with _service() as service:
        endpoint, secret = service.create_endpoint(
            CLI_CONTEXT, url=args.url, event_types=args.event_types, description=args.description
        )
    print(f"Endpoint {endpoint.id}")
    print(f"Secret   {secret}  (shown only now)")
    return 0


def run_deliveries(args: argparse.Namespace) -> int:
    with _service() as service:
        messages = service.deliveries(args.endpoint_id, limit=args.limit, state=args.state)
    if args.format == "json":
        print_rows(messages, "json")
        return 0
    rows = []
    for message in messages:
        last = message["attempts"][-1] if message["attempts"] else {}
        rows.append({
            "message": message["id"], "event_type": message["event_type"], "state": message["state"],
            "attempts": message["attempt_count"], "last_status": last.get("status"),
            "last_error": last.get("error"), "next_attempt_at": message["next_attempt_at"],
        })
    print_rows(rows, "table", ("message", "event_type", "state", "attempts", "last_status", "last_error", "next_attempt_at"))
    return 0


def run_replay(args: argparse.Namespace) -> int:
    with _service() as service:
        try:
            counts = service.replay(args.endpoint_id, args.since, args.until)
        except ReplayTooLargeError as error:
            raise UsageError(str(error)) from None
    print(
        f"Queued {counts['queued']} new messages and {counts['requeued']} again; "
        f"{counts['unchanged']} were still pending"
    )
    return 0


def run_test(args: argparse.Namespace) -> int:
    with _service() as service:
        message_id = service.send_test(args.endpoint_id)
    print(f"Queued test message {message_id}; a running 'hub webhooks work' sends it")
    return 0
