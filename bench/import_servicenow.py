"""Benchmark the ServiceNow import against raw ``eventsourcing`` appends.

Usage::

    python bench/import_servicenow.py                   # the bundled export, 3 runs
    python bench/import_servicenow.py --runs 1 --path export.csv.gz

Each run has two steps, each in its own child process on a new SQLite file:

1. ``hub``: import the whole export with the hub's importer (read, parse, map,
   apply ticket commands, save in batches of incidents);
2. ``raw``: append the same number of events to the same number of aggregates
   with the bare library, saved in batches of the same size. The aggregate is a
   plain ``Aggregate`` with one event class, which carries the hub's envelope
   (``occurred_at``, ``actor``, ``source``) and two payload fields. The events
   are built directly, with no parsing.

It prints the medians over the runs of rows/s and events/s for the import and
of events/s for the raw appends. It prints their ratio twice: in wall-clock
time, and in CPU time, which other load on the machine disturbs less. It also
prints each step's peak resident memory (the child's maximum RSS). It checks the
wall-clock ratio and the import's memory against the targets: half the raw
append rate or better, and under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.servicenow_import import BUNDLED_EXPORT, DEFAULT_BATCH_SIZE  # noqa: E402

RATIO_TARGET = 0.5
MEMORY_TARGET_MB = 500.0


def peak_memory_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_hub_step(path: str, database: str, batch_size: int) -> dict[str, Any]:
    from connectors.servicenow_import import import_incidents
    from hub.application import create_application
    from hub.settings import load_settings

    app = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{database}"}))
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = import_incidents(app, path, batch_size=batch_size)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    app.close()
    return {
        "rows": summary.rows_read,
        "incidents": summary.incidents,
        "events": summary.events_written,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_mb": peak_memory_mb(),
    }


def run_raw_step(events: int, aggregates: int, database: str, batch_size: int) -> dict[str, Any]:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    class RawTicket(Aggregate):
        class Changed(Aggregate.Event):
            occurred_at: datetime
            actor: dict[str, Any]
            source: dict[str, Any]
            name: str
            value: str

            def apply(self, aggregate: Any) -> None:
                aggregate.last = self.value

    app: Application[Any] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": database})
    # Spread the events over the aggregates as evenly as whole numbers allow.
    base, extra = divmod(events, aggregates)
    moment = datetime(2016, 3, 1, tzinfo=timezone.utc)
    started, cpu_started = time.perf_counter(), time.process_time()
    pending: list[RawTicket] = []
    for index in range(aggregates):
        aggregate = RawTicket()
        # The created event counts as the first of the aggregate's events.
        for step in range(base + (1 if index < extra else 0) - 1):
            aggregate.trigger_event(
                RawTicket.Changed,
                occurred_at=moment + timedelta(minutes=step),
                actor={"kind": "integration", "id": "Updated by 908"},
                source={"name": "servicenow", "external_id": f"INC{index:07d}", "external_event_id": f"INC{index:07d}:{step}"},
                name="status",
                value="Awaiting User Info",
            )
        pending.append(aggregate)
        if len(pending) == batch_size:
            app.save(*pending)
            pending = []
    if pending:
        app.save(*pending)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    stored = app.recorder.max_notification_id() or 0
    app.close()
    return {"events": stored, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": peak_memory_mb()}


def child(step: str, arguments: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--step", step, *arguments]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        sys.exit(f"the {step} step failed with exit code {finished.returncode}:\n{finished.stderr}")
    return json.loads(finished.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(BUNDLED_EXPORT), help="the export to import (default: the bundled one)")
    parser.add_argument("--runs", type=int, default=3, help="runs per step; medians are printed (default: 3)")
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
        help=f"incidents, and raw aggregates, per transaction (default: {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument("--step", choices=("hub", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--aggregates", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.step == "hub":
        print(json.dumps(run_hub_step(args.path, args.database, args.batch_size)))
        return 0
    if args.step == "raw":
        print(json.dumps(run_raw_step(args.events, args.aggregates, args.database, args.batch_size)))
        return 0

    hub_runs: list[dict[str, Any]] = []
    raw_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        for run in range(args.runs):
            hub_database = f"{folder}/hub-{run}-{uuid.uuid4().hex}.sqlite3"
            hub = child("hub", ["--path", args.path, "--database", hub_database, "--batch-size", str(args.batch_size)])
            raw_database = f"{folder}/raw-{run}-{uuid.uuid4().hex}.sqlite3"
            raw = child("raw", [
                "--events", str(hub["events"]), "--aggregates", str(hub["incidents"]),
                "--database", raw_database, "--batch-size", str(args.batch_size),
            ])
            hub_runs.append(hub)
            raw_runs.append(raw)
            print(
                f"run {run + 1}: import {hub['events']:,} events in {hub['seconds']:.2f} s "
                f"({hub['cpu_seconds']:.2f} s CPU), raw {raw['events']:,} events in {raw['seconds']:.2f} s "
                f"({raw['cpu_seconds']:.2f} s CPU)"
            )

    hub_rows_rate = statistics.median(r["rows"] / r["seconds"] for r in hub_runs)
    hub_events_rate = statistics.median(r["events"] / r["seconds"] for r in hub_runs)
    raw_events_rate = statistics.median(r["events"] / r["seconds"] for r in raw_runs)
    ratio = hub_events_rate / raw_events_rate
    cpu_ratio = statistics.median(r["cpu_seconds"] for r in raw_runs) / statistics.median(r["cpu_seconds"] for r in hub_runs)
    hub_peak = max(r["peak_mb"] for r in hub_runs)
    raw_peak = max(r["peak_mb"] for r in raw_runs)
    first = hub_runs[0]

    print()
    print(f"Export: {args.path}")
    print(f"  {first['rows']:,} rows, {first['incidents']:,} incidents, {first['events']:,} events")
    print(f"Medians over {args.runs} runs, SQLite file store, {args.batch_size} incidents per transaction:")
    print(f"  hub import:   {hub_rows_rate:,.0f} rows/s, {hub_events_rate:,.0f} events/s")
    print(f"  raw appends:  {raw_events_rate:,.0f} events/s")
    print(f"  ratio (import / raw): {ratio:.2f} (target {RATIO_TARGET} or more)")
    print(f"  ratio of CPU seconds (raw / import): {cpu_ratio:.2f}, less sensitive to other load on the machine")
    print(f"Peak resident memory: import {hub_peak:.0f} MB (target under {MEMORY_TARGET_MB:.0f} MB), raw {raw_peak:.0f} MB")
    met = ratio >= RATIO_TARGET and hub_peak < MEMORY_TARGET_MB
    print("Targets met" if met else "Targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
