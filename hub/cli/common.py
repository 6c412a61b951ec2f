"""Helpers shared by the CLI commands: argument types and output formats."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from hub.events import to_plain


class UsageError(Exception):
    """Bad command-line input; the CLI prints it on one line and exits with 2."""


def uuid_argument(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        msg = f"{value!r} is not a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e"
        raise argparse.ArgumentTypeError(msg) from None


def aware_datetime_argument(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{value!r} is not an ISO 8601 timestamp such as 2024-03-01T14:00:00+01:00"
        raise argparse.ArgumentTypeError(msg) from None
    if parsed.tzinfo is None:
        msg = f"{value!r} has no UTC offset; add one such as +00:00"
        raise argparse.ArgumentTypeError(msg)
    return parsed


def positive_int_argument(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        msg = f"{value!r} is not a whole number of 1 or more"
        raise argparse.ArgumentTypeError(msg)
    return int(value)


def add_format_option(parser: argparse.ArgumentParser, choices: Sequence[str] = ("table", "json")) -> None:
    parser.add_argument(
        "--format", choices=choices, default="table", help="output format (default: table)"
    )


def print_rows(rows: list[dict[str, Any]], output_format: str, columns: Sequence[str] | None = None) -> None:
    """Print rows as an aligned table, a JSON array or CSV."""
    rows = [to_plain(row) for row in rows]
    if output_format == "json":
        print(json.dumps(rows, indent=2, sort_keys=False))
        return
    columns = list(columns or (rows[0].keys() if rows else []))
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: _csv_cell(row.get(c)) for c in columns} for row in rows)
        sys.stdout.write(buffer.getvalue())
        return
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row_cells in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row_cells, widths)).rstrip())


def _csv_cell(value: Any) -> str:
    """Format a value for CSV at full precision, because spreadsheets compute on it."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
