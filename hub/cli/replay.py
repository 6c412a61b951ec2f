"""``hub replay``: a ticket's history and its state at a past version or instant."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hub.application import create_application
from hub.cli.common import (
    add_format_option,
    aware_datetime_argument,
    positive_int_argument,
    print_rows,
    uuid_argument,
)
from hub.domain import Ticket
from hub.events import to_plain


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="show a ticket's history and its state at a version or instant",
        description="Show every event of a ticket in order, then its state at the chosen point "
        "(the latest version by default).",
    )
    parser.add_argument("ticket_id", type=uuid_argument, metavar="TICKET_ID")
    point = parser.add_mutually_exclusive_group()
    point.add_argument("--version", type=positive_int_argument, metavar="N", help="state after the Nth event")
    point.add_argument(
        "--as-of", type=aware_datetime_argument, metavar="ISO8601",
        help="state after the last change that had occurred at this instant (with a UTC offset)",
    )
    add_format_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    app = create_application()
    try:
        if args.as_of is not None:
            ticket = app.get_as_of(Ticket, args.ticket_id, args.as_of)
        else:
            ticket = app.get(Ticket, args.ticket_id, version=args.version)
        history = [entry for entry in app.history(Ticket, args.ticket_id) if entry["version"] <= ticket.version]
    finally:
        app.close()

    state = to_plain(ticket.state())
    if args.format == "json":
        print(json.dumps({"state": state, "history": history}, indent=2))
        return 0

    rows = [
        {
            "version": entry["version"],
            "position": entry["position"],
            "type": entry["type"],
            "occurred_at": entry["occurred_at"],
            "recorded_at": entry["recorded_at"],
            "actor": f"{entry['actor']['kind']}:{entry['actor']['id']}",
            "source": entry["source"]["name"],
        }
        for entry in history
    ]
    print_rows(rows, "table")
    print()
    print(f"State at version {ticket.version}:")
    for name, value in state.items():
        if value not in (None, [], {}):
            print(f"  {name}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return 0
