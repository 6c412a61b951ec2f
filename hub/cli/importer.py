"""``hub import``: load history exported from another tool into the event store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta, timezone, tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.servicenow_import import (
    DEFAULT_BATCH_SIZE,
    ImportFileError,
    import_incidents,
    print_summary,
)
from hub.application import create_application
from hub.cli.common import UsageError, positive_int_argument


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import", help="import history exported from another tool",
        description="Import history exported from another tool. Importing the same file "
        "again adds nothing, and an interrupted import completes when run again.",
    )
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", parser_class=type(parser))
    sources.required = True

    servicenow = sources.add_parser(
        "servicenow-incidents", help="a ServiceNow incident audit export (CSV or .csv.gz)",
        description="Import a ServiceNow incident audit export: one CSV row per incident "
        "update, with Table API field names, '?' for missing values, plain or gzip. Each "
        "row's difference from the incident's previous row becomes ticket events.",
    )
    servicenow.add_argument("path", metavar="PATH", help="the CSV or .csv.gz export")
    servicenow.add_argument(
        "--timezone", default="UTC", metavar="ZONE",
        help="IANA time zone in which the export's timestamps are read, such as Europe/Paris "
        "(default: UTC)",
    )
    servicenow.add_argument(
        "--batch-size", type=positive_int_argument, default=DEFAULT_BATCH_SIZE, metavar="N",
        help=f"incidents saved per transaction (default: {DEFAULT_BATCH_SIZE})",
    )
    servicenow.add_argument(
        "--format", choices=("text", "json"), default="text",
        help="summary format (default: text)",
    )
    servicenow.set_defaults(handler=run_servicenow_incidents)


def run_servicenow_incidents(args: argparse.Namespace) -> int:
    zone = time_zone_argument(args.timezone)
    progress = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    app = create_application()
    try:
        summary = import_incidents(app, args.path, zone=zone, batch_size=args.batch_size, progress=progress)
    except ImportFileError as error:
        raise UsageError(str(error)) from None
    finally:
        app.close()
    if args.format == "json":
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print_summary(summary)
    return 0


def time_zone_argument(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"--timezone {name!r} is not a known IANA time zone; use a name such as UTC or Europe/Paris"
        raise UsageError(msg) from None


class ProgressBar:
    """A one-line progress bar with rows per second and the estimated time left."""

    WIDTH = 30
    # Redrawing more often than this only costs time.
    REDRAW_SECONDS = 0.2

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.total = 0
        self.done = 0
        self.started = 0.0
        self.drawn_at = 0.0

    def start(self, total_rows: int) -> None:
        self.total = total_rows
        self.started = time.monotonic()
        self._draw()

    def advance(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self.drawn_at >= self.REDRAW_SECONDS:
            self._draw()

    def finish(self) -> None:
        self._draw()
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self) -> None:
        now = time.monotonic()
        self.drawn_at = now
        elapsed = now - self.started
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.WIDTH)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            remaining = timedelta(seconds=round((self.total - self.done) / rate))
            eta = str(remaining)
        else:
            eta = "--:--"
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\r[{bar}] {share:4.0%} {self.done:,}/{self.total:,} rows  {rate:,.0f} rows/s  ETA {eta} "
        )
        self.stream.flush()
