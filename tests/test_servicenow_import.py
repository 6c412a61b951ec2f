"""Importing ServiceNow incident exports: accounting, idempotence, resumability and KPIs."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.servicenow_import import BUNDLED_EXPORT, ImportFileError, import_incidents, parse_naive_timestamp
from hub.application import create_application
from hub.cli import main
from hub.domain import Context, Ticket, external_uuid
from hub.settings import load_settings

UTC = timezone.utc

with gzip.open(BUNDLED_EXPORT, "rt", newline="") as bundled:
    HEADER = next(csv.reader(bundled))

# The export's first row (incident INC0000045), the base of the hand-made rows below.
BASE_ROW = {
    "number": "INC0000045", "incident_state": "New", "active": "true", "reassignment_count": "0",
    "reopen_count": "0", "sys_mod_count": "0", "made_sla": "true", "caller_id": "Caller 2403",
    "opened_by": "Opened by  8", "opened_at": "29/2/2016 01:16", "sys_created_by": "Created by 6",
    "sys_created_at": "29/2/2016 01:23", "sys_updated_by": "Updated by 21",
    "sys_updated_at": "29/2/2016 01:23", "contact_type": "Phone", "location": "Location 143",
    "category": "Category 55", "subcategory": "Subcategory 170", "u_symptom": "Symptom 72",
    "cmdb_ci": "?", "impact": "2 - Medium", "urgency": "2 - Medium", "priority": "3 - Moderate",
    "assignment_group": "Group 56", "assigned_to": "?", "knowledge": "true",
    "u_priority_confirmation": "false", "notify": "Do Not Notify", "problem_id": "?", "rfc": "?",
    "vendor": "?", "caused_by": "?", "closed_code": "code 5", "resolved_by": "Resolved by 149",
    "resolved_at": "29/2/2016 11:29", "closed_at": "5/3/2016 12:00",
}


def write_export(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows (overrides of BASE_ROW) as a plain CSV export with the real header."""
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=HEADER)
        writer.writeheader()
        for row in rows:
            writer.writerow({**BASE_ROW, **row})
    return path


def write_slice(path: Path, rows: int, *, compress: bool = False) -> Path:
    """Write the header and the first `rows` rows of the bundled export."""
    with gzip.open(BUNDLED_EXPORT, "rt", newline="") as source:
        lines = list(itertools.islice(source, rows + 1))
    if compress:
        with gzip.open(path, "wt", newline="") as target:
            target.writelines(lines)
    else:
        with path.open("w", newline="") as target:
            target.writelines(lines)
    return path


def sqlite_app(path: Path):
    return create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{path}"}))


def stored_events(app) -> list[Any]:
    return [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(1, 10**7)]


def ticket_id(number: str):
    return external_uuid("ticket", "servicenow", number)


@pytest.fixture(scope="module")
def slice_2000(tmp_path_factory) -> Path:
    return write_slice(tmp_path_factory.mktemp("export") / "slice.csv", 2000)


# Accounting and idempotence.


def test_import_accounts_for_every_row(app, slice_2000):
    summary = import_incidents(app, slice_2000)

    with slice_2000.open(newline="") as stream:
        numbers = {row["number"] for row in csv.DictReader(stream)}
    assert summary.rows_read == 2000
    assert summary.incidents == len(numbers)
    assert summary.rows_imported + summary.rows_duplicate + summary.rows_unchanged + summary.rows_rejected == 2000
    assert summary.rows_imported > 0
    assert summary.events_written == len(stored_events(app))
    assert summary.duplicates == 0


def test_reimport_adds_nothing(app, slice_2000):
    first = import_incidents(app, slice_2000)

    again = import_incidents(app, slice_2000)

    assert again.events_written == 0
    assert again.duplicates == first.events_written
    assert again.rows_duplicate == first.rows_imported
    assert again.rows_unchanged == first.rows_unchanged
    assert len(stored_events(app)) == first.events_written


def test_gzip_and_plain_exports_import_alike(tmp_path):
    plain = write_slice(tmp_path / "slice.csv", 500)
    packed = write_slice(tmp_path / "slice.csv.gz", 500, compress=True)
    plain_app, packed_app = sqlite_app(tmp_path / "plain.sqlite3"), sqlite_app(tmp_path / "packed.sqlite3")

    from_plain = import_incidents(plain_app, plain).as_dict()
    from_packed = import_incidents(packed_app, packed).as_dict()

    for summary in (from_plain, from_packed):
        del summary["path"], summary["seconds"]
    assert from_plain == from_packed
    assert [(e.originator_id, e.originator_version) for e in stored_events(plain_app)] == [
        (e.originator_id, e.originator_version) for e in stored_events(packed_app)
    ]
    plain_app.close()
    packed_app.close()


def test_reimport_after_hub_events_finds_duplicates(memory_app, slice_2000):
    first = import_incidents(memory_app, slice_2000)
    rating = Context(actor_kind="requester", actor_id="Caller 2403", occurred_at=datetime(2017, 1, 1, tzinfo=UTC))
    memory_app.execute(Ticket, ticket_id("INC0000045"), "rate_satisfaction", rating, score=5)

    again = import_incidents(memory_app, slice_2000)

    assert again.events_written == 0
    assert again.duplicates == first.events_written


def test_longer_export_appends_only_new_rows(tmp_path):
    rows = [
        {"sys_mod_count": "0"},
        {"sys_mod_count": "1", "incident_state": "Active", "sys_updated_at": "29/2/2016 02:00"},
        {"sys_mod_count": "2", "incident_state": "Resolved", "sys_updated_at": "29/2/2016 11:29"},
        {"sys_mod_count": "3", "incident_state": "Closed", "sys_updated_at": "5/3/2016 12:00"},
    ]
    short = write_export(tmp_path / "short.csv", rows[:2])
    full = write_export(tmp_path / "full.csv", rows)
    growing, clean = sqlite_app(tmp_path / "growing.sqlite3"), sqlite_app(tmp_path / "clean.sqlite3")

    import_incidents(growing, short)
    appended = import_incidents(growing, full)
    import_incidents(clean, full)

    assert appended.events_written == 2
    assert appended.duplicates == 7
    assert [(type(e).__name__, e.occurred_at, e.source) for e in stored_events(growing)] == [
        (type(e).__name__, e.occurred_at, e.source) for e in stored_events(clean)
    ]
    growing.close()
    clean.close()


# Rows, times and order.


def test_bad_rows_are_rejected_by_reason(memory_app, tmp_path):
    rows = [
        {"sys_mod_count": "0"},
        {"sys_mod_count": "1", "incident_state": "-100", "sys_updated_at": "29/2/2016 02:00"},
        {"sys_mod_count": "2", "incident_state": "Active", "sys_updated_at": "29/2/2016 25:00"},
        {"number": "?", "sys_mod_count": "3"},
        {"sys_mod_count": "?", "incident_state": "Active"},
        {"sys_mod_count": "4", "incident_state": "-100", "sys_updated_at": "29/2/2016 04:00"},
        {"sys_mod_count": "5", "incident_state": "Active", "sys_updated_at": "29/2/2016 05:00"},
    ]
    export = write_export(tmp_path / "bad.csv", rows)

    summary = import_incidents(memory_app, export)

    assert summary.rejected == {
        "unknown incident_state": 2, "invalid date in sys_updated_at": 1, "missing number": 1,
        "missing sys_mod_count": 1,
    }
    assert summary.rejected_lines == {
        "unknown incident_state": [3, 7], "invalid date in sys_updated_at": [4], "missing number": [5],
        "missing sys_mod_count": [6],
    }
    assert summary.rows_imported == 2
    ticket = memory_app.get(Ticket, ticket_id("INC0000045"))
    assert ticket.status == "open"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29/2/2016 01:16", datetime(2016, 2, 29, 1, 16)),
        ("5/3/2016 12:00", datetime(2016, 3, 5, 12, 0)),
        ("2016-02-29 01:16:05", datetime(2016, 2, 29, 1, 16, 5)),
        ("29/2/2016", None),
        ("31/2/2016 10:00", None),
        ("29/2/16 10:00", None),
        ("29.2.2016 10:00", None),
        ("2016-02-29T01:16:05", None),
        ("29/2/2016 0\u00b2:16", None),
        ("\u0662\u0669/2/2016 01:16", None),
    ],
)
def test_timestamp_formats(text, expected):
    assert parse_naive_timestamp(text) == expected


def test_naive_times_are_read_in_the_given_zone(memory_app, tmp_path):
    export = write_export(tmp_path / "one.csv", [{"sys_mod_count": "0"}])

    import_incidents(memory_app, export, zone=ZoneInfo("Europe/Paris"))

    ticket = memory_app.get(Ticket, ticket_id("INC0000045"))
    assert ticket.opened_at == datetime(2016, 2, 29, 0, 16, tzinfo=UTC)
    assert ticket.opened_at.utcoffset() == timedelta(hours=1)


def test_naive_times_default_to_utc(memory_app, tmp_path):
    export = write_export(tmp_path / "one.csv", [{"sys_mod_count": "0"}])

    import_incidents(memory_app, export)

    ticket = memory_app.get(Ticket, ticket_id("INC0000045"))
    assert ticket.opened_at == datetime(2016, 2, 29, 1, 16, tzinfo=UTC)


def test_rows_apply_in_sys_mod_count_order(memory_app, tmp_path):
    rows = [
        {"sys_mod_count": "2", "incident_state": "Awaiting User Info", "sys_updated_at": "29/2/2016 03:00"},
        {"sys_mod_count": "0"},
        {"sys_mod_count": "1", "incident_state": "Active", "sys_updated_at": "29/2/2016 09:00"},
    ]
    export = write_export(tmp_path / "shuffled.csv", rows)

    import_incidents(memory_app, export)

    history = memory_app.history(Ticket, ticket_id("INC0000045"))
    statuses = [entry["data"]["status"] for entry in history if entry["type"] == "ticket.status_changed"]
    assert statuses == ["open", "pending"]


def test_update_time_breaks_sys_mod_count_ties(memory_app, tmp_path):
    rows = [
        {"sys_mod_count": "0"},
        {"sys_mod_count": "1", "incident_state": "Awaiting User Info", "sys_updated_at": "29/2/2016 03:00"},
        {"sys_mod_count": "1", "incident_state": "Active", "sys_updated_at": "29/2/2016 02:00"},
    ]
    export = write_export(tmp_path / "ties.csv", rows)

    import_incidents(memory_app, export)

    history = memory_app.history(Ticket, ticket_id("INC0000045"))
    status_events = [entry for entry in history if entry["type"] == "ticket.status_changed"]
    assert [entry["data"]["status"] for entry in status_events] == ["open", "pending"]
    assert [entry["source"]["external_event_id"] for entry in status_events] == [
        "INC0000045:1:0:change_status", "INC0000045:1:1:change_status",
    ]


def test_resolution_times_across_a_reopen(memory_app, tmp_path):
    final = {"reopen_count": "1", "resolved_at": "1/3/2016 16:00", "closed_at": "6/3/2016 17:00"}
    rows = [
        {"sys_mod_count": "0", **final, "reopen_count": "0"},
        {"sys_mod_count": "1", "incident_state": "Resolved", "sys_updated_at": "29/2/2016 08:00", **final, "reopen_count": "0"},
        {"sys_mod_count": "2", "incident_state": "Active", "sys_updated_at": "1/3/2016 09:00", **final},
        {"sys_mod_count": "3", "incident_state": "Resolved", "sys_updated_at": "1/3/2016 15:00", **final},
        {"sys_mod_count": "4", "incident_state": "Closed", "sys_updated_at": "6/3/2016 17:00", **final},
    ]
    export = write_export(tmp_path / "reopened.csv", rows)

    import_incidents(memory_app, export)

    history = memory_app.history(Ticket, ticket_id("INC0000045"))
    resolutions = [entry for entry in history if entry["type"] == "ticket.resolved"]
    assert [entry["occurred_at"] for entry in resolutions] == [
        "2016-02-29T08:00:00+00:00", "2016-03-01T16:00:00+00:00",
    ]
    assert [entry["data"]["resolution_code"] for entry in resolutions] == [None, "code 5"]
    ticket = memory_app.get(Ticket, ticket_id("INC0000045"))
    assert ticket.reopen_count == 1
    assert ticket.closed_at == datetime(2016, 3, 6, 17, 0, tzinfo=UTC)


def test_row_rejected_by_ticket_rules_leaves_no_events(memory_app, tmp_path):
    rows = [
        {"sys_mod_count": "0"},
        {
            "sys_mod_count": "1", "incident_state": "Active", "category": "C" * 300,
            "sys_updated_at": "29/2/2016 02:00",
        },
        {"sys_mod_count": "2", "incident_state": "Active", "sys_updated_at": "29/2/2016 03:00"},
    ]
    export = write_export(tmp_path / "long.csv", rows)

    summary = import_incidents(memory_app, export)

    assert summary.rejected == {"rejected by ticket rules": 1}
    assert summary.rejected_lines == {"rejected by ticket rules": [3]}
    history = memory_app.history(Ticket, ticket_id("INC0000045"))
    assert "2016-02-29T02:00:00+00:00" not in [entry["occurred_at"] for entry in history]
    status_changes = [entry for entry in history if entry["type"] == "ticket.status_changed"]
    assert [entry["occurred_at"] for entry in status_changes] == ["2016-02-29T03:00:00+00:00"]
    assert memory_app.get(Ticket, ticket_id("INC0000045")).category == "Category 55"


def test_progress_counts_every_row(memory_app, slice_2000):
    class RecordedProgress:
        def __init__(self) -> None:
            self.total = None
            self.advanced = 0
            self.finished = False

        def start(self, total_rows: int) -> None:
            self.total = total_rows

        def advance(self, rows: int) -> None:
            self.advanced += rows

        def finish(self) -> None:
            self.finished = True

    progress = RecordedProgress()

    import_incidents(memory_app, slice_2000, batch_size=50, progress=progress)

    assert progress.total == 2000
    assert progress.advanced == 2000
    assert progress.finished


def test_missing_column_raises_import_file_error(memory_app, tmp_path):
    export = tmp_path / "wrong.csv"
    export.write_text("number,incident_state\nINC1,New\n")

    with pytest.raises(ImportFileError, match="has no column 'sys_mod_count', 'sys_updated_at', 'opened_at'"):
        import_incidents(memory_app, export)


# The command line.


def run_hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "--log-level", "WARNING", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )


def test_cli_reimport_says_nothing_new(tmp_path, slice_2000, capsys, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path}/hub.sqlite3")
    assert main(["import", "servicenow-incidents", str(slice_2000), "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)

    assert main(["import", "servicenow-incidents", str(slice_2000)]) == 0

    output = capsys.readouterr().out
    assert output.splitlines()[0] == f"0 new events, {first['events_written']:,} duplicates"
    assert "Rows read: 2,000" in output


def test_cli_rejects_unknown_timezone(tmp_path, slice_2000, capsys, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path}/hub.sqlite3")

    code = main(["import", "servicenow-incidents", str(slice_2000), "--timezone", "Mars/Olympus"])

    assert code == 2
    assert "--timezone 'Mars/Olympus' is not a known IANA time zone" in capsys.readouterr().err


def test_cli_rejects_missing_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path}/hub.sqlite3")

    code = main(["import", "servicenow-incidents", str(tmp_path / "nowhere.csv")])

    assert code == 2
    assert "nowhere.csv does not exist" in capsys.readouterr().err


def event_rows(database: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT originator_id, originator_version, topic FROM stored_events ORDER BY originator_id, originator_version"
        ).fetchall()


def count_events(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_killed_import_completes_on_rerun(tmp_path):
    export = write_slice(tmp_path / "slice.csv", 8000)
    clean_db, killed_db = tmp_path / "clean.sqlite3", tmp_path / "killed.sqlite3"
    clean = run_hub("import", "servicenow-incidents", str(export), env={"HUB_DATABASE_URL": f"sqlite:///{clean_db}"})
    assert clean.returncode == 0, clean.stderr
    expected = event_rows(clean_db)

    # Kill the import as soon as its first batch is committed.
    command = [
        sys.executable, "-m", "hub.cli", "--log-level", "WARNING",
        "import", "servicenow-incidents", str(export), "--batch-size", "10",
    ]
    process = subprocess.Popen(
        command, env={**os.environ, "HUB_DATABASE_URL": f"sqlite:///{killed_db}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while count_events(killed_db) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL

    partial = event_rows(killed_db)
    assert 0 < len(partial) < len(expected)
    # Every incident in the killed store is whole.
    expected_versions = Counter(originator for originator, _, _ in expected)
    partial_versions = Counter(originator for originator, _, _ in partial)
    assert all(expected_versions[originator] == count for originator, count in partial_versions.items())

    rerun = run_hub(
        "import", "servicenow-incidents", str(export), "--format", "json",
        env={"HUB_DATABASE_URL": f"sqlite:///{killed_db}"},
    )
    assert rerun.returncode == 0, rerun.stderr
    assert event_rows(killed_db) == expected
    summary = json.loads(rerun.stdout)
    assert summary["events_written"] + summary["duplicates"] == len(expected)
    assert summary["duplicates"] == len(partial)


# KPIs by priority, against a computation straight from the CSV.

PRIORITY_NAMES = {"1 - Critical": "critical", "2 - High": "high", "3 - Moderate": "medium", "4 - Low": "low"}
STATE_STATUS = {
    "New": "new", "Active": "open", "Awaiting User Info": "pending", "Awaiting Vendor": "on_hold",
    "Awaiting Problem": "on_hold", "Awaiting Evidence": "on_hold", "Resolved": "resolved", "Closed": "closed",
}


def read_time(text: str) -> datetime:
    return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=UTC)


def interpolated_percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def incident_figures(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Follow one incident's rows in update order and return its KPI inputs.

    Resolutions follow state changes into Resolved: at ``resolved_at`` once the
    incident has its final reopen count, else at the row's update time. A rise
    of ``reopen_count`` reopens the incident and cancels its resolution, and so
    does a change from Resolved back to an open state. A row whose (group,
    assignee) is non-empty, differs from the row before and comes with a rise of
    ``reassignment_count`` is a reassignment.
    """
    final_reopens = int(rows[-1]["reopen_count"])
    opened_at = read_time(rows[0]["opened_at"])
    status = None
    reassignments = 0
    reopened = False
    resolution = None
    priority = made_sla = None
    for row in rows:
        if status is not None and int(row["reopen_count"]) > int(previous["reopen_count"]):
            reopened = True
            resolution = None
            status = "open"
        pair = (row["assignment_group"], row["assigned_to"])
        if status is not None and pair != ("?", "?") and pair != previous_pair:
            reassignments += int(row["reassignment_count"]) > int(previous["reassignment_count"])
        previous_pair = pair
        new_status = STATE_STATUS[row["incident_state"]]
        if status == "resolved" and new_status in ("new", "open", "pending", "on_hold"):
            resolution = None
        if new_status == "resolved" and status != "resolved":
            final = int(row["reopen_count"]) == final_reopens and row["resolved_at"] != "?"
            resolution = read_time(row["resolved_at"] if final else row["sys_updated_at"])
        status = new_status
        priority = PRIORITY_NAMES[row["priority"]]
        made_sla = row["made_sla"] == "true"
        previous = row
    hours = None if resolution is None else (resolution - opened_at).total_seconds() / 3600
    return {
        "priority": priority, "made_sla": made_sla, "hours": hours, "reopened": reopened,
        "reassignments": reassignments,
    }


def independent_priority_kpis(export: Path) -> dict[str, dict[str, Any]]:
    """Compute the KPIs per final priority from the CSV alone."""
    with export.open(newline="") as stream:
        incidents: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for index, row in enumerate(csv.DictReader(stream)):
            incidents.setdefault(row["number"], []).append((index, row))
    figures = []
    for rows in incidents.values():
        rows.sort(key=lambda item: (int(item[1]["sys_mod_count"]), read_time(item[1]["sys_updated_at"]), item[0]))
        figures.append(incident_figures([row for _, row in rows]))

    result = {}
    for priority in PRIORITY_NAMES.values():
        group = [figure for figure in figures if figure["priority"] == priority]
        hours = [figure["hours"] for figure in group if figure["hours"] is not None]
        result[priority] = {
            "tickets": len(group),
            "source_sla_adherence": sum(figure["made_sla"] for figure in group) / len(group),
            "resolution_hours_p50": interpolated_percentile(hours, 0.5),
            "resolution_hours_p90": interpolated_percentile(hours, 0.9),
            "reopen_rate": sum(figure["reopened"] for figure in group) / len(group),
            "reassignments_mean": sum(figure["reassignments"] for figure in group) / len(group),
        }
    return result


def test_kpis_by_priority_match_the_csv(tmp_path):
    from projections.queries import kpis
    from projections.registry import all_views
    from projections.runner import ProjectionRunner

    export = write_slice(tmp_path / "slice.csv", 8000)
    app = sqlite_app(tmp_path / "hub.sqlite3")
    summary = import_incidents(app, export)
    assert summary.rows_rejected == 0
    runner = ProjectionRunner(app, all_views())
    runner.catch_up()

    rows = kpis(runner.db, group_by="priority")

    expected = independent_priority_kpis(export)
    assert [row["priority"] for row in rows] == ["critical", "high", "medium", "low"]
    for row in rows:
        measured = {name: row[name] for name in expected[row["priority"]]}
        assert measured == expected[row["priority"]], row["priority"]
    runner.close()
    app.close()
