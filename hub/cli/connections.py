"""``hub connections``, ``hub sync``, ``hub keys`` and ``hub clock``: connectors from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from hub.application import create_application
from hub.cli.common import UsageError, add_format_option, print_rows, uuid_argument
from hub.domain import Context
from hub.settings import load_settings

logger = logging.getLogger(__name__)

CONNECTION_COLUMNS = ("id", "kind", "name", "base_url", "schedule", "last_sync", "last_sync_at", "sync_count")


def register(subparsers: Any) -> None:
    connections = subparsers.add_parser(
        "connections", help="add and list connections to helpdesk tools",
        description="Configure connections to Zendesk, Freshdesk and ServiceNow.",
    )
    actions = connections.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    add = actions.add_parser(
        "add", help="add a connection",
        description="Add a connection. Credentials are read as a JSON object from a file, or from "
        "standard input with '-', so that they stay out of the shell history and the process list. "
        "They are stored encrypted under HUB_CIPHER_KEY.",
    )
    add.add_argument("--kind", required=True, choices=("zendesk", "freshdesk", "servicenow"), help="the tool")
    add.add_argument("--base-url", required=True, help="the tool's API root, such as https://example.zendesk.com")
    add.add_argument(
        "--credentials", required=True, metavar="FILE",
        help="JSON file with the credentials ('-' reads standard input), such as "
        '{"email": "...", "api_token": "..."} for Zendesk',
    )
    when = add.add_mutually_exclusive_group()
    when.add_argument("--every-minutes", type=int, metavar="N", help="sync every N minutes")
    when.add_argument("--cron", metavar="EXPR", help="sync on a cron expression in UTC, such as '*/15 * * * *'")
    add.add_argument(
        "--option", action="append", default=[], metavar="NAME=JSON",
        help='a connection option with a JSON value, such as include=["audits"] (repeat it for more options)',
    )
    add.add_argument("--name", help="a display name (default: the kind)")
    add.set_defaults(handler=run_add)

    listing = actions.add_parser("list", help="list the connections", description="List the connections.")
    add_format_option(listing)
    listing.set_defaults(handler=run_list)

    sync = subparsers.add_parser(
        "sync", help="run one sync of a connection",
        description="Pull the tool's changes since the connection's cursor and push the hub's changes "
        "back, then print the counts. Exits with 1 when the sync fails.",
    )
    sync.add_argument("connection_id", type=uuid_argument, metavar="CONNECTION_ID")
    add_format_option(sync)
    sync.set_defaults(handler=run_sync)

    keys = subparsers.add_parser("keys", help="manage encryption keys", description="Manage encryption keys.")
    key_actions = keys.add_subparsers(dest="action", metavar="ACTION")
    key_actions.required = True
    generate = key_actions.add_parser(
        "generate", help="print a new HUB_CIPHER_KEY",
        description="Print a new random 32-byte AES key, base64-encoded, for HUB_CIPHER_KEY, which encrypts "
        "connection credentials and webhook secrets. Keep it secret; secrets stored under one key cannot be "
        "read with another.",
    )
    generate.set_defaults(handler=run_generate_key)

    clock = subparsers.add_parser(
        "clock", help="run the scheduler (connection syncs, SLA clock, reports)",
        description="Run the scheduled jobs in the foreground until interrupted: each connection's syncs, "
        "the SLA clock and the daily, weekly, monthly and quarterly reports. This is the Procfile's "
        "clock process; several may run, and each job still runs once at a time.",
    )
    clock.set_defaults(handler=run_clock_command)


def run_add(args: argparse.Namespace) -> int:
    from connectors.connection import create_connection

    credentials = _read_credentials(args.credentials)
    options = _parse_options(args.option)
    schedule: Any = None
    if args.every_minutes is not None:
        schedule = {"every_minutes": args.every_minutes}
    elif args.cron:
        schedule = args.cron

    settings = load_settings()
    app = create_application(settings)
    try:
        ctx = Context(actor_kind="agent", actor_id="cli", source_name="cli")
        connection = create_connection(
            app, ctx, kind=args.kind, base_url=args.base_url, credentials=credentials,
            schedule=schedule, options=options, name=args.name, settings=settings,
        )
    finally:
        app.close()
    print(connection.id)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from connectors.connection import list_connections

    app = create_application()
    try:
        connections = list_connections(app)
    finally:
        app.close()
    if args.format == "json":
        print_rows([connection.state() for connection in connections], "json")
        return 0
    rows = []
    for connection in connections:
        last = connection.last_sync or {}
        rows.append({
            "id": str(connection.id),
            "kind": connection.kind,
            "name": connection.name,
            "base_url": connection.base_url,
            "schedule": _describe_schedule(connection.schedule),
            "last_sync": last.get("status"),
            "last_sync_at": last.get("finished_at"),
            "sync_count": connection.sync_count,
        })
    print_rows(rows, "table", CONNECTION_COLUMNS)
    return 0


def run_sync(args: argparse.Namespace) -> int:
    from connectors.sync import SyncBusyError, SyncEngine, SyncError

    settings = load_settings()
    app = create_application(settings)
    try:
        try:
            result = SyncEngine(app, settings).sync(args.connection_id, trigger="cli")
        except SyncBusyError as error:
            raise UsageError(str(error)) from None
        except SyncError as error:
            print(f"hub sync: sync {error.result.sync_id} failed: {error}", file=sys.stderr)
            _print_result(error.result.as_dict(), args.format)
            return 1
    finally:
        app.close()
    _print_result(result.as_dict(), args.format)
    return 0


def run_generate_key(args: argparse.Namespace) -> int:
    from hub.secrets import generate_key

    print(generate_key())
    return 0


def run_clock_command(args: argparse.Namespace) -> int:
    from connectors.schedule import run_clock

    def request_stop(signum: int, frame: Any) -> None:
        # Process managers stop a process with SIGTERM, which would otherwise end
        # it at once; SystemExit lets run_clock shut the scheduler down and close
        # the store, and jobs already running finish before the interpreter exits.
        logger.info("Clock process received signal %d; stopping", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, request_stop)
    run_clock(load_settings())
    return 0


def _print_result(result: dict[str, Any], output_format: str) -> None:
    if output_format == "json":
        print(json.dumps(result, indent=2))
        return
    print(f"sync {result['sync_id']} {result['status']} ({result['started_at']} to {result['finished_at']})")
    for name, value in sorted(result["counts"].items()):
        print(f"  {name}: {value}")


def _read_credentials(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read the credentials file {source!r}: {error.strerror}") from None
    try:
        credentials = json.loads(text)
    except json.JSONDecodeError:
        # The message leaves out the text, which may hold a secret.
        raise UsageError(f"the credentials in {source!r} are not a JSON object; write them as JSON") from None
    if not isinstance(credentials, dict):
        raise UsageError(f"the credentials in {source!r} must be a JSON object of string fields")
    return credentials


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise UsageError(f"--option {pair!r} must have the form NAME=JSON, such as page_size=100")
        try:
            options[name] = json.loads(value)
        except json.JSONDecodeError:
            raise UsageError(f"--option {name}: {value!r} is not JSON; quote strings, such as source_name='\"eu\"'") from None
    return options


def _describe_schedule(schedule: dict[str, Any] | None) -> str:
    if not schedule:
        return "manual"
    if "every_minutes" in schedule:
        return f"every {schedule['every_minutes']} min"
    return f"cron {schedule['cron']}"
