"""Import a ServiceNow incident audit export (CSV, plain or gzip) into the hub.

Each row of the export is one update of an incident. Rows are grouped per
incident and ordered by ``sys_mod_count``, then ``sys_updated_at``, then file
order. `connectors.servicenow_mapping` turns each row's difference from the
incident's previous row into ticket commands.

Missing values are the literal ``?``. Timestamps are naive, day first
(``D/M/YYYY HH:MM``) or ISO (``YYYY-MM-DD HH:MM[:SS]``), and are read in the
time zone given to the import.

The import is idempotent and resumable. Ticket ids derive from the incident
number, and every event carries the external event id
``{number}:{sys_mod_count}:{tie}:{change}``, where ``tie`` counts earlier rows of
the incident with the same ``sys_mod_count``. Each transaction contains whole
incidents, so a killed import leaves every incident either complete or absent,
and running it again appends only what is missing.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import operator
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

import hub
from connectors.servicenow_mapping import (
    SOURCE_NAME,
    MappingError,
    change_actor_id,
    external_event_id,
    map_incident_update,
    ticket_status,
)
from hub.application import HubApplication
from hub.domain import Context, Ticket, external_uuid
from hub.domain.errors import DomainError

logger = logging.getLogger(__name__)

# The UCI "Incident management process enriched event log" (a ServiceNow audit
# log of 141,712 updates to 24,918 incidents), shipped with the hub.
BUNDLED_EXPORT = Path(hub.__file__).resolve().parent / "data" / "incident_event_log.csv.gz"

# The export spells three Table API fields differently.
COLUMN_ALIASES = {
    "sys_updated_at": "sys_updated_on",
    "sys_created_at": "sys_created_on",
    "closed_code": "close_code",
}

TEXT_FIELDS = (
    "number", "incident_state", "sys_id", "short_description", "description",
    "sys_updated_by", "opened_by", "caller_id", "contact_type", "category", "subcategory",
    "u_symptom", "priority", "impact", "urgency", "assignment_group", "assigned_to", "close_code",
)
COUNT_FIELDS = ("sys_mod_count", "reassignment_count", "reopen_count")
FLAG_FIELDS = ("made_sla", "knowledge")
TIME_FIELDS = ("sys_updated_on", "opened_at", "resolved_at", "closed_at")
REQUIRED_FIELDS = ("number", "incident_state", "sys_mod_count", "sys_updated_on", "opened_at")

MISSING = "?"

# Incidents per transaction. Larger batches save faster, and a killed import
# loses at most one batch of work, which the next run redoes.
DEFAULT_BATCH_SIZE = 500

# How many line numbers the summary keeps per rejection reason.
REJECTED_LINES_KEPT = 10

# How many rejected rows per reason are logged as warnings before the rest go to debug.
REJECTED_ROWS_LOGGED = 3


class ImportFileError(Exception):
    """The export cannot be read as a whole: a missing file, a bad header, a broken archive."""


class RowError(Exception):
    """One row is invalid; `reason` is the short key it is counted under."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class Progress(Protocol):
    """Receives the import's progress in rows."""

    def start(self, total_rows: int) -> None: ...

    def advance(self, rows: int) -> None: ...

    def finish(self) -> None: ...


@dataclass
class ImportSummary:
    """Counts of the rows an import read, the events it wrote and the rows it rejected.

    Every row read is counted once: as imported (it wrote events), duplicate (all
    of its events were already recorded), unchanged (nothing the hub records
    changed) or rejected (under a reason).
    """

    path: str
    rows_read: int = 0
    incidents: int = 0
    events_written: int = 0
    duplicates: int = 0
    rows_imported: int = 0
    rows_duplicate: int = 0
    rows_unchanged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_lines: dict[str, list[int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def reject(self, reason: str, line: int, message: str) -> None:
        self.rejected[reason] += 1
        lines = self.rejected_lines.setdefault(reason, [])
        if len(lines) < REJECTED_LINES_KEPT:
            lines.append(line)
        if self.rejected[reason] <= REJECTED_ROWS_LOGGED:
            logger.warning("Rejected line %d of %s (%s): %s", line, self.path, reason, message)
        else:
            logger.debug("Rejected line %d of %s (%s): %s", line, self.path, reason, message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows_read": self.rows_read,
            "incidents": self.incidents,
            "events_written": self.events_written,
            "duplicates": self.duplicates,
            "rows_imported": self.rows_imported,
            "rows_duplicate": self.rows_duplicate,
            "rows_unchanged": self.rows_unchanged,
            "rows_rejected": self.rows_rejected,
            "rejected": {
                reason: {"rows": count, "first_lines": self.rejected_lines[reason]}
                for reason, count in sorted(self.rejected.items())
            },
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ExportRows:
    """The parsed rows of an export, grouped per incident in order of first appearance.

    Each row is (line, values), with the values in the order of `fields`. Rows
    that failed to parse are in `rejected` as (line, reason, message).
    """

    fields: tuple[str, ...]
    incidents: dict[str, list[tuple[int, tuple[Any, ...]]]]
    rows_read: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class _IncidentOutcome:
    ticket: Ticket | None
    events_written: int = 0
    duplicates: int = 0
    rows_imported: int = 0
    rows_duplicate: int = 0
    rows_unchanged: int = 0
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)


class _RowRejectedByDomain(Exception):
    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


# Reading the export.


def open_export(path: str | Path) -> io.TextIOBase:
    """Open a CSV export as text, decompressing it when it is gzip."""
    path = Path(path)
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
    except FileNotFoundError:
        raise ImportFileError(f"{path} does not exist; pass the path of a CSV or .csv.gz export") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path} is a folder; pass the path of a CSV or .csv.gz export") from None
    except PermissionError:
        raise ImportFileError(f"{path} cannot be read: permission denied") from None
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_export(path: str | Path, zone: tzinfo = timezone.utc) -> ExportRows:
    """Read and parse an export, and group its rows per incident.

    Naive timestamps are read in `zone`. Only the columns the import uses are kept.
    """
    # NOTE: every parsed row stays in memory until the import ends, because rows are
    # grouped per incident. The bundled 141,712 rows peak at about 100 MB RSS.
    with open_export(path) as stream:
        reader = csv.reader(stream)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError(f"{path} is empty; expected a header row with {', '.join(REQUIRED_FIELDS)}") from None
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
            raise ImportFileError(f"{path} cannot be read as CSV: {error}") from None
        columns = _column_positions(path, header)
        positions = list(columns.values())
        pick = operator.itemgetter(*positions)
        width = max(positions) + 1
        parser = RowParser(tuple(columns), zone)
        number_index = parser.fields.index("number")
        export = ExportRows(fields=parser.fields, incidents={})
        try:
            for raw in reader:
                if not raw:
                    continue
                export.rows_read += 1
                if len(raw) < width:
                    raw = raw + [""] * (width - len(raw))
                try:
                    values = parser.parse(pick(raw))
                except RowError as error:
                    export.rejected.append((reader.line_num, error.reason, str(error)))
                    continue
                export.incidents.setdefault(values[number_index], []).append((reader.line_num, values))
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
            msg = f"{path} cannot be read past line {reader.line_num}: {error}"
            raise ImportFileError(msg) from None
    return export


def _column_positions(path: str | Path, header: list[str]) -> dict[str, int]:
    names = [COLUMN_ALIASES.get(name.strip(), name.strip()) for name in header]
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    if missing:
        spelled = [next((alias for alias, name in COLUMN_ALIASES.items() if name == m), m) for m in missing]
        msg = (
            f"{path} has no column {', '.join(repr(name) for name in spelled)}; "
            "expected a ServiceNow incident export with Table API field names"
        )
        raise ImportFileError(msg)
    used_fields = (*TEXT_FIELDS, *COUNT_FIELDS, *FLAG_FIELDS, *TIME_FIELDS)
    return {name: names.index(name) for name in used_fields if name in names}


# Parsing one row.


class _ConvertedValues(dict):  # type: ignore[type-arg]
    """The converted values of one column, keyed by raw text; each new text is converted once.

    Most values repeat from row to row, so almost every lookup is a dict hit.
    """

    def __init__(self, name: str, convert: Callable[[str, str], Any]) -> None:
        super().__init__()
        self.name = name
        self.convert = convert

    def __missing__(self, text: str) -> Any:
        stripped = text.strip()
        value = None if stripped in (MISSING, "") else self.convert(self.name, stripped)
        self[text] = value
        return value


class RowParser:
    """Convert the raw values of a row to what the mapping expects, in the order of `fields`.

    ``?`` and empty values become None, counters int, flags bool and times
    timezone-aware datetimes in the parser's zone.
    """

    def __init__(self, fields: tuple[str, ...], zone: tzinfo) -> None:
        self.fields = fields
        self.zone = zone
        self._times: dict[str, datetime] = {}
        converters = {
            **dict.fromkeys(COUNT_FIELDS, self._count),
            **dict.fromkeys(FLAG_FIELDS, self._flag),
            **dict.fromkeys(TIME_FIELDS, self._time),
            "incident_state": self._state,
        }
        self._columns = [_ConvertedValues(name, converters.get(name, self._text)) for name in fields]
        self._required = [(index, name) for index, name in enumerate(fields) if name in REQUIRED_FIELDS]
        self._required_values = operator.itemgetter(*(index for index, _ in self._required))

    def parse(self, raw_values: Iterable[str]) -> tuple[Any, ...]:
        """Return the converted values; raise RowError for an invalid or missing value."""
        values = tuple(map(operator.getitem, self._columns, raw_values))
        if None in self._required_values(values):
            for index, name in self._required:
                if values[index] is None:
                    raise RowError(f"missing {_file_name(name)}", f"{_file_name(name)} is missing")
        return values

    def _text(self, name: str, text: str) -> str:
        return text

    def _state(self, name: str, text: str) -> str:
        try:
            ticket_status(text)
        except MappingError as error:
            raise RowError(error.reason, str(error)) from None
        return text

    def _count(self, name: str, text: str) -> int:
        if not (text.isascii() and text.isdigit()):
            raise RowError(f"invalid {name}", f"{name} {text!r} is not a whole number of 0 or more")
        return int(text)

    def _flag(self, name: str, text: str) -> bool:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise RowError(f"invalid {name}", f"{name} {text!r} is neither true nor false")
        return lowered == "true"

    def _time(self, name: str, text: str) -> datetime:
        # The time columns repeat each other's values, so they share one cache.
        parsed = self._times.get(text)
        if parsed is None:
            naive = parse_naive_timestamp(text)
            if naive is None:
                column = _file_name(name)
                msg = f"{column} {text!r} is not a date such as 29/2/2016 13:05 or 2016-02-29 13:05:00"
                raise RowError(f"invalid date in {column}", msg)
            parsed = self._times[text] = naive.replace(tzinfo=self.zone)
        return parsed


def parse_naive_timestamp(text: str) -> datetime | None:
    """Parse ``D/M/YYYY HH:MM[:SS]`` (day first) or ``YYYY-MM-DD HH:MM[:SS]``, or return None."""
    date_part, _, time_part = text.partition(" ")
    if "/" in date_part:
        pieces = date_part.split("/")
        if len(pieces) != 3:
            return None
        day, month, year = pieces
    else:
        pieces = date_part.split("-")
        if len(pieces) != 3:
            return None
        year, month, day = pieces
    clock = time_part.strip().split(":") if time_part.strip() else []
    if len(clock) not in (2, 3) or len(year) != 4:
        return None
    pieces = [year, month, day, *clock]
    if not all(piece.isascii() and piece.isdigit() for piece in pieces):
        return None
    numbers = [int(piece) for piece in pieces]
    second = numbers[5] if len(numbers) == 6 else 0
    try:
        return datetime(numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], second)
    except ValueError:
        return None


def _file_name(name: str) -> str:
    """Return the export's spelling of a Table API field name."""
    for alias, field_name in COLUMN_ALIASES.items():
        if field_name == name:
            return alias
    return name


# Importing.


def import_incidents(
    app: HubApplication,
    path: str | Path,
    *,
    zone: tzinfo = timezone.utc,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import an export into the hub and return what was written, skipped and rejected.

    Naive timestamps are read in `zone`. Each transaction contains up to `batch_size`
    incidents, every one of them whole.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} is invalid; pass 1 or more")
    started = time.perf_counter()
    summary = ImportSummary(path=str(path))
    logger.info("Reading ServiceNow export %s", path)
    export = read_export(path, zone)
    summary.rows_read = export.rows_read
    summary.incidents = len(export.incidents)
    for line, reason, message in export.rejected:
        summary.reject(reason, line, message)

    logger.info(
        "Importing %d rows of %d incidents from %s in batches of %d incidents",
        export.rows_read, summary.incidents, path, batch_size,
    )
    if progress is not None:
        progress.start(export.rows_read)
        progress.advance(len(export.rejected))
    for batch in _batches(export.incidents, batch_size):
        rows_in_batch = _import_batch(app, batch, export.fields, summary)
        if progress is not None:
            progress.advance(rows_in_batch)
    if progress is not None:
        progress.finish()

    summary.seconds = time.perf_counter() - started
    logger.info(
        "Imported %s: %d rows, %d incidents, %d new events, %d duplicates, %d rows rejected, %.1f s",
        path, summary.rows_read, summary.incidents, summary.events_written, summary.duplicates,
        summary.rows_rejected, summary.seconds,
    )
    return summary


def _batches(
    incidents: dict[str, list[tuple[int, tuple[Any, ...]]]], size: int
) -> Iterator[list[tuple[str, list[tuple[int, tuple[Any, ...]]]]]]:
    batch: list[tuple[str, list[tuple[int, tuple[Any, ...]]]]] = []
    for number, rows in incidents.items():
        batch.append((number, rows))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _import_batch(
    app: HubApplication,
    batch: list[tuple[str, list[tuple[int, tuple[Any, ...]]]]],
    fields: tuple[str, ...],
    summary: ImportSummary,
) -> int:
    """Import a batch of incidents in one transaction; return the number of rows in the batch."""
    ticket_ids = {number: external_uuid("ticket", SOURCE_NAME, number) for number, _ in batch}
    heads = stored_heads(app, list(ticket_ids.values()))
    tickets: list[Ticket] = []
    outcomes: list[tuple[_IncidentOutcome, list[tuple[int, int, dict[str, Any]]]]] = []
    rows_in_batch = 0
    for number, rows in batch:
        rows_in_batch += len(rows)
        records = _ordered_records(rows, fields)
        ticket_id = ticket_ids[number]
        head = heads.get(ticket_id)
        outcome = _recorded_outcome(records, head) if head is not None else None
        if outcome is None:
            outcome = _import_incident(app, number, ticket_id, records, exists=head is not None)
        outcomes.append((outcome, records))
        if outcome.ticket is not None and outcome.events_written:
            tickets.append(outcome.ticket)

    if tickets:
        app.save_batch(tickets)
    for outcome, records in outcomes:
        for index, (reason, message) in sorted(outcome.rejected.items()):
            summary.reject(reason, records[index][0], message)
        summary.events_written += outcome.events_written
        summary.duplicates += outcome.duplicates
        summary.rows_imported += outcome.rows_imported
        summary.rows_duplicate += outcome.rows_duplicate
        summary.rows_unchanged += outcome.rows_unchanged
    return rows_in_batch


def _ordered_records(
    rows: list[tuple[int, tuple[Any, ...]]], fields: tuple[str, ...]
) -> list[tuple[int, int, dict[str, Any]]]:
    """Put an incident's parsed rows in update order as (line, tie, record).

    ``tie`` counts the earlier rows with the same ``sys_mod_count``, and it is
    part of the external event ids.

    The export repeats the values of the incident's final resolution and closure
    on every row, so rows before the last reopen get none: their resolutions
    happened at their own update time.
    """
    # A stable sort keeps file order among rows with the same sys_mod_count and update time.
    order_key = operator.itemgetter(fields.index("sys_mod_count"), fields.index("sys_updated_on"))
    rows = sorted(rows, key=lambda row: order_key(row[1]))
    final_reopen_count = 0
    if "reopen_count" in fields:
        final_reopen_count = rows[-1][1][fields.index("reopen_count")] or 0

    ordered: list[tuple[int, int, dict[str, Any]]] = []
    tie, previous_mod_count = 0, None
    for line, values in rows:
        record = dict(zip(fields, values))
        if final_reopen_count and (record.get("reopen_count") or 0) < final_reopen_count:
            record["resolved_at"] = record["closed_at"] = record["close_code"] = None
        mod_count = record["sys_mod_count"]
        tie = tie + 1 if mod_count == previous_mod_count else 0
        previous_mod_count = mod_count
        ordered.append((line, tie, record))
    return ordered


def _recorded_outcome(records: list[tuple[int, int, dict[str, Any]]], head: Any) -> _IncidentOutcome | None:
    """Return the outcome of an incident whose changes are all recorded already, or None.

    This spares loading the ticket on a repeated import. The outcome is returned
    when the ticket's last event is the incident's last change and the ticket has as many events as
    the incident has changes.
    """
    # NOTE: this trusts that the run which recorded the last change recorded the
    # earlier ones too, which is true because every incident is saved whole.
    outcome = _IncidentOutcome(None)
    previous: dict[str, Any] | None = None
    changes_count = 0
    last_event_id = None
    for index, (_line, tie, record) in enumerate(records):
        try:
            changes = map_incident_update(previous, record)
        except MappingError as error:
            outcome.rejected[index] = (error.reason, str(error))
            continue
        previous = record
        if not changes:
            outcome.rows_unchanged += 1
            continue
        outcome.rows_duplicate += 1
        changes_count += len(changes)
        last_event_id = external_event_id(record["number"], record["sys_mod_count"], tie, changes[-1])
    if head.originator_version != changes_count or head.source.get("external_event_id") != last_event_id:
        return None
    outcome.duplicates = changes_count
    return outcome


def _import_incident(
    app: HubApplication,
    number: str,
    ticket_id: UUID,
    records: list[tuple[int, int, dict[str, Any]]],
    *,
    exists: bool,
) -> _IncidentOutcome:
    """Apply an incident's rows to its ticket, skipping what is already recorded.

    A row that a domain guard rejects is dropped and the incident is replayed
    without it, so that no half-applied row stays on the ticket.
    """
    rejected: dict[int, tuple[str, str]] = {}
    while True:
        ticket = app.repository.get(ticket_id) if exists else None
        try:
            outcome = _apply_rows(ticket, ticket_id, records, rejected)
        except _RowRejectedByDomain as error:
            message = f"incident {number}: {error}"
            rejected[error.index] = ("rejected by ticket rules", message)
            continue
        outcome.rejected = rejected
        return outcome


def _apply_rows(
    ticket: Ticket | None,
    ticket_id: UUID,
    records: list[tuple[int, int, dict[str, Any]]],
    rejected: dict[int, tuple[str, str]],
) -> _IncidentOutcome:
    outcome = _IncidentOutcome(ticket)
    # Only a ticket loaded from the store can have recorded changes already,
    # because each change of a run has its own external event id.
    stored = ticket is not None
    previous: dict[str, Any] | None = None
    for index, (_line, tie, record) in enumerate(records):
        if index in rejected:
            continue
        try:
            changes = map_incident_update(previous, record)
        except MappingError as error:
            rejected[index] = (error.reason, str(error))
            continue
        previous = record
        if not changes:
            outcome.rows_unchanged += 1
            continue

        written = 0
        for change in changes:
            event_id = external_event_id(record["number"], record["sys_mod_count"], tie, change)
            if stored and ticket is not None and (change.command == "open" or ticket.has_recorded(event_id)):
                outcome.duplicates += 1
                continue
            ctx = Context(
                actor_kind="integration",
                actor_id=change_actor_id(record, change),
                source_name=SOURCE_NAME,
                occurred_at=change.occurred_at,
                external_id=record["number"],
                external_event_id=event_id,
            )
            try:
                if change.command == "open":
                    ticket = Ticket.open(ctx, ticket_id=ticket_id, **change.arguments)
                else:
                    assert ticket is not None, "the first change of an incident opens its ticket"
                    command: Callable[..., Any] = getattr(ticket, change.command)
                    command(ctx, **change.arguments)
            except DomainError as error:
                raise _RowRejectedByDomain(index, f"{change.command}: {error}") from None
            written += 1
        outcome.ticket = ticket
        outcome.events_written += written
        if written:
            outcome.rows_imported += 1
        else:
            outcome.rows_duplicate += 1
    return outcome


def stored_heads(app: HubApplication, aggregate_ids: list[UUID]) -> dict[UUID, Any]:
    """Return the last stored event of each of these aggregates that exists, in one query per 500 ids."""
    recorder: Any = app.recorder
    table = recorder.events_table_name
    is_postgres = app.factory.__class__.__module__.startswith("eventsourcing.postgres")
    heads: dict[UUID, Any] = {}
    for start in range(0, len(aggregate_ids), 500):
        chunk = aggregate_ids[start:start + 500]
        with recorder.datastore.transaction(commit=False) as cursor:
            if is_postgres:
                from psycopg.sql import SQL, Identifier

                statement = SQL(
                    "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                    "FROM {schema}.{table} e JOIN ("
                    "SELECT originator_id, MAX(originator_version) AS version FROM {schema}.{table} "
                    "WHERE originator_id = ANY(%s) GROUP BY originator_id"
                    ") last ON e.originator_id = last.originator_id AND e.originator_version = last.version"
                ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(table))
                cursor.execute(statement, (chunk,))
                rows = [
                    (UUID(str(row["originator_id"])), row["originator_version"], row["topic"], bytes(row["state"]))
                    for row in cursor.fetchall()
                ]
            else:
                placeholders = ", ".join("?" * len(chunk))
                cursor.execute(
                    f"SELECT e.originator_id, e.originator_version, e.topic, e.state "  # noqa: S608
                    f"FROM {table} e JOIN ("
                    f"SELECT originator_id, MAX(originator_version) AS version FROM {table} "
                    f"WHERE originator_id IN ({placeholders}) GROUP BY originator_id"
                    f") last ON e.originator_id = last.originator_id AND e.originator_version = last.version",
                    [aggregate_id.hex for aggregate_id in chunk],
                )
                rows = [(UUID(row[0]), row[1], row[2], row[3]) for row in cursor.fetchall()]
        for aggregate_id, version, topic, state in rows:
            heads[aggregate_id] = app.mapper.to_domain_event(StoredEvent(aggregate_id, version, topic, state))
    return heads


def print_summary(summary: ImportSummary, stream: Any = None) -> None:
    """Print a summary of an import for people."""
    stream = stream or sys.stdout
    lines = [
        f"{summary.events_written:,} new events, {summary.duplicates:,} duplicates",
        f"Rows read: {summary.rows_read:,}",
        f"Incidents: {summary.incidents:,}",
        f"Events written: {summary.events_written:,}",
        f"Duplicates: {summary.duplicates:,}",
        f"Rows imported: {summary.rows_imported:,}",
        f"Rows already imported: {summary.rows_duplicate:,}",
        f"Rows without change: {summary.rows_unchanged:,}",
        f"Rows rejected: {summary.rows_rejected:,}",
    ]
    for reason, count in sorted(summary.rejected.items()):
        first_lines = ", ".join(str(line) for line in summary.rejected_lines[reason])
        more = ", ..." if count > len(summary.rejected_lines[reason]) else ""
        lines.append(f"  {reason}: {count:,} (lines {first_lines}{more})")
    lines.append(f"Seconds: {summary.seconds:.1f}")
    print("\n".join(lines), file=stream)
