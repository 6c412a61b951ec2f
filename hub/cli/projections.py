"""``hub projections``, ``hub worker`` and the report commands ``hub kpi``, ``hub escalations``, ``hub improvements``.

The report commands first apply the events that the views have not applied yet
(unless ``--no-catch-up``), so they report on everything recorded. A running
``hub worker`` or embedded runner keeps that step short.
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
)
from hub.settings import load_settings
from projections.escalations import EscalationQueryError
from projections.kpis import DIMENSIONS, FCR_DEFINITIONS, KpiQueryError, check_filter_value
from projections.registry import all_views
from projections.runner import ProjectionRunner

logger = logging.getLogger(__name__)

KPI_TABLE_COLUMNS = (
    "tickets", "open", "resolved", "first_response_hours_p50", "first_response_hours_p90",
    "resolution_hours_p50", "resolution_hours_p90", "fcr", "csat", "reopen_rate",
    "escalation_rate", "sla_adherence", "source_sla_adherence",
)
ESCALATION_COLUMNS = (
    "ticket_id", "seq", "level", "owner", "state", "escalated_at", "promised_by",
    "update_count", "overdue", "overdue_hours", "priority", "ticket_status",
)
IMPROVEMENT_COLUMNS = (
    "title", "kpi", "phase", "baseline", "target", "measured", "measured_from_views",
    "change_from_baseline", "target_met", "decision",
)


def register(subparsers: Any) -> None:
    projections = subparsers.add_parser(
        "projections", help="show or rebuild the views",
        description="Show each view's position and lag, or rebuild views from the first event.",
    )
    actions = projections.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    status = actions.add_parser("status", help="show each view's position and lag")
    add_format_option(status, ("table", "json", "csv"))
    status.set_defaults(handler=run_status)
    rebuild = actions.add_parser("rebuild", help="drop a view (or all) and replay it from the first event")
    rebuild.add_argument("name", nargs="?", help="view name (default: every view)")
    rebuild.add_argument(
        "--page-size", type=positive_int_argument, default=1000,
        help="events applied per transaction (default: 1000)",
    )
    rebuild.set_defaults(handler=run_rebuild)

    worker = subparsers.add_parser(
        "worker", help="keep the views up to date and deliver webhooks (a separate process in production)",
        description="Apply new events to every view as they are recorded and deliver webhook "
        "messages, until stopped with SIGINT or SIGTERM. On PostgreSQL it is woken by "
        "LISTEN/NOTIFY; on SQLite it polls. Several workers may run at once.",
    )
    worker.add_argument(
        "--no-webhooks", action="store_true",
        help="only keep the views up to date; deliver no webhook messages in this process",
    )
    worker.add_argument(
        "--poll-interval", type=float, default=1.0,
        help="seconds between polls on SQLite, and the fallback on PostgreSQL (default: 1.0)",
    )
    worker.add_argument("--once", action="store_true", help="catch up once and exit")
    worker.set_defaults(handler=run_worker)

    kpi = subparsers.add_parser(
        "kpi", help="print KPIs, optionally per dimension",
        description="Print KPIs over the tickets opened in [--since, --until). Periods are UTC.",
    )
    kpi.add_argument("--by", choices=tuple(DIMENSIONS), help="group by this dimension")
    kpi.add_argument("--since", type=aware_datetime_argument, help="first opening time included (ISO 8601 with offset)")
    kpi.add_argument("--until", type=aware_datetime_argument, help="opening time excluded from here on (ISO 8601 with offset)")
    kpi.add_argument(
        "--filter", action="append", default=[], metavar="DIMENSION=VALUE",
        help="keep only tickets with this value, such as priority=high (repeatable)",
    )
    kpi.add_argument(
        "--fcr-definition", choices=tuple(FCR_DEFINITIONS), default="default",
        help="first-contact resolution definition (default: one public agent reply, never reopened)",
    )
    kpi.add_argument(
        "--repeat-window-days", type=float, default=30.0,
        help="days after a resolution in which a new ticket of the same client and category is a repeat (default: 30)",
    )
    _add_report_options(kpi)
    kpi.set_defaults(handler=run_kpi)

    escalations = subparsers.add_parser(
        "escalations", help="list escalations, or count them by level and owner",
        description="List escalation episodes (open ones by default), a count per level and owner "
        "with --summary, or a ticket's escalation history with --ticket.",
    )
    escalations.add_argument("--state", choices=("open", "resolved", "all"), default="open", help="episode state (default: open)")
    escalations.add_argument("--owner", help="only this owner")
    escalations.add_argument("--level", type=int, choices=(1, 2, 3), help="only this level")
    escalations.add_argument("--overdue", action="store_true", help="only open episodes whose promised update time has passed")
    escalations.add_argument("--summary", action="store_true", help="count open and overdue escalations by level and owner")
    escalations.add_argument("--ticket", help="print this ticket's escalation history")
    escalations.add_argument("--limit", type=positive_int_argument, default=100, help="maximum episodes listed (default: 100)")
    _add_report_options(escalations)
    escalations.set_defaults(handler=run_escalations)

    improvements = subparsers.add_parser(
        "improvements", help="print the PDCA log",
        description="Print each improvement cycle with its baseline, change, measured KPI and decision.",
    )
    improvements.add_argument("--phase", choices=("plan", "do", "check", "act"), help="only cycles in this phase")
    improvements.add_argument("--kpi", help="only cycles on this KPI")
    _add_report_options(improvements)
    improvements.set_defaults(handler=run_improvements)


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    add_format_option(parser, ("table", "json", "csv"))
    parser.add_argument(
        "--no-catch-up", action="store_true",
        help="report from the views as they are, without applying new events first",
    )


@contextmanager
def _runner() -> Iterator[ProjectionRunner]:
    settings = load_settings()
    app = create_application(settings)
    runner = ProjectionRunner(app, all_views(), create_tables=settings.create_tables)
    try:
        yield runner
    finally:
        runner.close()
        app.close()


def _prepare(runner: ProjectionRunner, args: argparse.Namespace) -> None:
    runner.setup()
    if not args.no_catch_up:
        applied = runner.catch_up()
        if applied:
            logger.info("Applied %d new events to the views before reporting", applied)


def run_status(args: argparse.Namespace) -> int:
    with _runner() as runner:
        print_rows(runner.status(), args.format, ("name", "position", "lag"))
    return 0


def run_rebuild(args: argparse.Namespace) -> int:
    with _runner() as runner:
        try:
            applied = runner.rebuild(args.name, page_size=args.page_size)
        except LookupError as error:
            raise UsageError(str(error)) from None
        print(f"Rebuilt {args.name or 'every view'}: {applied} events applied")
    return 0


def run_worker(args: argparse.Namespace) -> int:
    if args.poll_interval <= 0:
        msg = f"--poll-interval {args.poll_interval} is invalid; use a positive number of seconds"
        raise UsageError(msg)
    with _runner() as runner:
        runner.setup()
        if args.once:
            applied = runner.catch_up()
            print(f"Applied {applied} events; views at position {runner.min_position()}")
            return 0
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            logger.info("Worker received signal %d; stopping after the current page", signum)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        webhooks = None
        if not args.no_webhooks:
            from webhooks.worker import start_in_background as start_webhooks

            webhooks = start_webhooks(runner.app)
        try:
            runner.run_forever(stop, poll_interval=args.poll_interval)
        finally:
            if webhooks is not None:
                webhooks.stop()
    return 0


def _parse_filters(items: list[str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or name not in DIMENSIONS:
            msg = f"--filter {item!r} is invalid; use DIMENSION=VALUE with one of {', '.join(DIMENSIONS)}"
            raise UsageError(msg)
        # The same rule as the API's, checked before the views catch up.
        try:
            check_filter_value(name, value)
        except KpiQueryError as error:
            raise UsageError(str(error)) from None
        filters[name] = value
    return filters


def run_kpi(args: argparse.Namespace) -> int:
    from projections.queries import kpis

    filters = _parse_filters(args.filter)
    if args.since and args.until and args.until <= args.since:
        msg = f"--until {args.until.isoformat()} is not after --since {args.since.isoformat()}"
        raise UsageError(msg)
    with _runner() as runner:
        _prepare(runner, args)
        try:
            rows = kpis(
                runner.db, group_by=args.by, since=args.since, until=args.until, filters=filters or None,
                fcr_definition=args.fcr_definition, repeat_window_days=args.repeat_window_days,
            )
        except KpiQueryError as error:
            raise UsageError(str(error)) from None
    columns = ((args.by,) if args.by else ()) + KPI_TABLE_COLUMNS
    # The table shows the main figures; JSON and CSV carry every figure.
    print_rows(rows, args.format, columns if args.format == "table" else None)
    return 0


def run_escalations(args: argparse.Namespace) -> int:
    from projections.queries import escalation_history, escalation_summary, escalations

    with _runner() as runner:
        _prepare(runner, args)
        if args.ticket:
            print_rows(escalation_history(runner.db, args.ticket), args.format)
            return 0
        if args.summary:
            print_rows(escalation_summary(runner.db), args.format)
            return 0
        try:
            page = escalations(
                runner.db, state=args.state, owner=args.owner, level=args.level,
                overdue=True if args.overdue else None, limit=args.limit,
            )
        except EscalationQueryError as error:
            raise UsageError(str(error)) from None
    print_rows(page["items"], args.format, None if args.format == "json" else ESCALATION_COLUMNS)
    return 0


def run_improvements(args: argparse.Namespace) -> int:
    from projections.queries import improvements

    with _runner() as runner:
        _prepare(runner, args)
        entries = improvements(runner.db, phase=args.phase, kpi=args.kpi)
    print_rows(entries, args.format, None if args.format == "json" else IMPROVEMENT_COLUMNS)
    return 0
