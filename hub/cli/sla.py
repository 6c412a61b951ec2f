"""``hub sla``: SLA clocks per ticket, target and cycle, as of now."""

from __future__ import annotations

import argparse
from typing import Any

from hub.application import create_application
from hub.cli.common import UsageError, add_format_option, positive_int_argument, print_rows, uuid_argument
from projections.db import Database
from projections.runner import ProjectionRunner
from projections.sla import MAX_LIMIT, SlaView, sla_rows, sla_ticket
from projections.sla_engine import STATES

COLUMNS = (
    "ticket_id", "target", "cycle", "priority", "state", "due_at", "elapsed_business_minutes",
    "remaining_business_minutes", "paused_minutes", "breached_at", "fulfilled_at", "policy_revision",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sla", help="show SLA clocks: due times, elapsed and remaining business minutes, states",
        description="Bring the SLA view up to date with the event store, then list one row per "
        "ticket, target and cycle as of now, earliest due time first.",
    )
    parser.add_argument("--state", choices=STATES, help="only rows in this state now")
    parser.add_argument("--ticket", type=uuid_argument, metavar="ID", help="only the rows of this ticket")
    parser.add_argument(
        "--limit", type=positive_int_argument, default=100, metavar="N",
        help=f"maximum number of rows (default: 100, at most {MAX_LIMIT})",
    )
    add_format_option(parser, ("table", "json", "csv"))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.limit > MAX_LIMIT:
        raise UsageError(f"--limit {args.limit} is too large; use at most {MAX_LIMIT}")
    app = create_application()
    db = Database.for_application(app)
    runner = ProjectionRunner(app, [SlaView()], db)
    try:
        runner.catch_up()
        if args.ticket is not None:
            summary = sla_ticket(db, args.ticket)
            if summary is None:
                raise UsageError(f"ticket {args.ticket} not found in the SLA view; check the id")
            if summary["policy_id"] is None:
                print(f"Ticket {args.ticket} has no SLA policy: none was defined when it was opened.")
                return 0
        page = sla_rows(db, state=args.state, ticket_id=args.ticket, limit=args.limit)
    finally:
        runner.close()
        db.close()
        app.close()

    print_rows(page["items"], args.format, COLUMNS)
    return 0
