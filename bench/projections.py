"""Benchmark the projections: rebuild rate against the raw read-and-decode rate, and KPI query time.

Usage::

    python bench/projections.py                 # 1,000,000 events
    python bench/projections.py --events 50000  # a quick run

Steps, each timed on its own:

1. generate realistic ticket histories (and a few NPS responses and improvement
   cycles) into a new SQLite file, in a child process, until ``--events`` events exist;
2. read and decode every event from the store in pages of 1000 (the raw rate);
3. rebuild every registered view from the first event;
4. run the KPI query of ``hub kpi --by priority`` five times (median), the command
   in this process five times, and the command once as a new process.

It prints events/s for steps 2 and 3 with their ratio, the share of the rebuild
spent reading and decoding, and the time in each view. It also prints the KPI
times and the peak resident memory of this process during steps 2-4, which
leaves out the generator because that runs in a child process.
``--reuse --path FILE`` repeats steps 2-4 on a store generated before.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.application import create_application  # noqa: E402
from hub.domain import ClientAccount, Context, Improvement, Ticket  # noqa: E402
from hub.settings import load_settings  # noqa: E402

CHANNELS = ("email", "web", "phone", "chat", "api")
CATEGORIES = ("billing", "login", "outage", "performance", "integration", "data", "account", "how-to")
PRIORITY_WEIGHTS = (("critical", 5), ("high", 20), ("medium", 50), ("low", 25))
GROUPS = ("tier1", "tier2", "billing-desk", "platform")
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def context(kind: str, actor: str, at: datetime) -> Context:
    return Context(actor_kind=kind, actor_id=actor, source_name="bench", occurred_at=at)


def build_ticket(rng: random.Random, accounts: list, opened: datetime) -> Ticket:
    """Record one ticket's life in memory: on average about 12 events."""
    account = rng.choice(accounts)
    agent = f"agent-{rng.randrange(40)}"
    requester = {"id": f"req-{rng.randrange(5000)}"}
    ticket = Ticket.open(
        context("requester", requester["id"], opened), ticket_id=_uuid(rng), subject="Cannot sign in",
        channel=rng.choice(CHANNELS), requester=requester, client_account_id=str(account),
        description="Details of the request",
    )
    at = opened + timedelta(minutes=rng.randint(1, 30))
    ticket.classify(context("agent", agent, at), category=rng.choice(CATEGORIES))
    priority = rng.choices([p for p, _ in PRIORITY_WEIGHTS], [w for _, w in PRIORITY_WEIGHTS])[0]
    ticket.prioritize(context("agent", agent, at), priority=priority)
    ticket.assign(context("system", "router", at), group=rng.choice(GROUPS), agent=agent)

    # The conversation: a first reply, then up to two rounds with the requester.
    at += timedelta(hours=rng.lognormvariate(0.5, 1.0))
    ticket.reply(context("agent", agent, at), body="Thanks, we are looking into it.")
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        at += timedelta(hours=rng.lognormvariate(1.0, 1.0))
        ticket.receive_requester_reply(context("requester", requester["id"], at), body="More details")
        at += timedelta(hours=rng.lognormvariate(0.5, 1.0))
        ticket.reply(context("agent", agent, at), body="Here is what we found.")

    # Occasional notes, reassignments and escalations.
    if rng.random() < 0.15:
        ticket.add_note(context("agent", agent, at), body="Checked the logs")
    if rng.random() < 0.1:
        ticket.assign(context("agent", agent, at), group=rng.choice(GROUPS), agent=f"agent-{rng.randrange(40)}")
    if rng.random() < 0.08:
        ticket.escalate(
            context("agent", agent, at), level=rng.choice((1, 2, 3)), reason="customer impact",
            owner=f"lead-{rng.randrange(5)}", promised_by=at + timedelta(hours=4),
        )
        at += timedelta(hours=rng.uniform(1, 8))
        ticket.update_escalation(context("agent", agent, at), note="Fix in progress", promised_by=at + timedelta(hours=4))
        ticket.resolve_escalation(context("agent", agent, at + timedelta(hours=2)), note="Fixed")

    # Nine tickets in ten are resolved; a few are reopened, rated and closed.
    if rng.random() < 0.9:
        at += timedelta(hours=rng.lognormvariate(2.0, 1.2))
        ticket.resolve(context("agent", agent, at), resolution_code="fixed")
        if rng.random() < 0.06:
            at += timedelta(days=rng.uniform(0.5, 5))
            ticket.reopen(context("requester", requester["id"], at), reason="Still broken")
            at += timedelta(hours=rng.lognormvariate(1.5, 1.0))
            ticket.reply(context("agent", agent, at), body="Second fix applied.")
            ticket.resolve(context("agent", agent, at), resolution_code="fixed")
        ticket.record_fact(context("integration", "servicenow", at), name="made_sla", value=rng.random() < 0.85)
        if rng.random() < 0.4:
            ticket.rate_satisfaction(context("requester", requester["id"], at + timedelta(hours=3)), score=rng.choice((1, 3, 4, 5, 5, 5)))
        if rng.random() < 0.2:
            ticket.score_effort(context("requester", requester["id"], at + timedelta(hours=3)), score=rng.randint(1, 7))
        ticket.close(context("system", "closer", at + timedelta(days=3)))
    return ticket


def _uuid(rng: random.Random):
    import uuid

    return uuid.UUID(int=rng.getrandbits(128), version=4)


def generate(path: str, events: int, seed: int) -> None:
    """Fill a new SQLite store with at least ``events`` events."""
    rng = random.Random(seed)
    app = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{path}"}))
    try:
        accounts = []
        batch = []
        for index in range(200):
            account = ClientAccount.register(
                context("system", "bench", START), account_id=_uuid(rng), organization=f"Client {index}"
            )
            accounts.append(account.id)
            batch.append(account)
        app.save(*batch)
        written = len(batch)
        minutes_between_tickets = 365 * 24 * 60 / max(events / 12, 1)
        opened = START
        while written < events:
            batch = []
            for _ in range(100):
                opened += timedelta(minutes=rng.expovariate(1 / minutes_between_tickets))
                batch.append(build_ticket(rng, accounts, opened))
            if rng.random() < 0.3:
                account = ClientAccount.register(
                    context("system", "bench", opened), account_id=_uuid(rng), organization="Survey batch"
                )
                for _ in range(20):
                    account.record_nps(context("requester", "contact", opened), score=rng.randint(0, 10))
                batch.append(account)
            if rng.random() < 0.01:
                improvement = Improvement.plan(
                    context("agent", "manager", opened), improvement_id=_uuid(rng), title="Faster replies",
                    kpi="first_response_hours_p50", baseline=2.0, target=1.5,
                )
                improvement.do(context("agent", "manager", opened), change="New macros")
                batch.append(improvement)
            recordings = app.save(*batch)
            written += len(recordings)
        print(json.dumps({"events": app.max_position()}))
    finally:
        app.close()


def read_and_decode(app, page_size: int = 1000) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    position = 0
    to_domain_event = app.mapper.to_domain_event
    while True:
        notifications = app.recorder.select_notifications(start=position, limit=page_size, inclusive_of_start=False)
        if not notifications:
            break
        for notification in notifications:
            to_domain_event(notification)
        count += len(notifications)
        position = notifications[-1].id
    return count, time.perf_counter() - started


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stopwatch:
    """Adds up the time spent in wrapped callables, by label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, label: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started

        return timed


def generate_store(path: str, events: int, seed: int) -> None:
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, __file__, "--generate-only", "--events", str(events), "--path", path, "--seed", str(seed)],
        check=True, capture_output=True, text=True,
    ).stdout
    generated = json.loads(output.strip().splitlines()[-1])["events"]
    seconds = time.perf_counter() - started
    print(f"generated        {generated:>10,} events in {seconds:7.1f} s ({path}, {os.path.getsize(path) / 2**20:.0f} MiB)")


def measure(path: str) -> None:
    from eventsourcing.sqlite import SQLiteConnection

    from hub.cli import main as hub_main
    from projections.queries import kpis
    from projections.registry import all_views
    from projections.runner import ProjectionRunner

    environ = {"HUB_DATABASE_URL": f"sqlite:///{path}"}
    app = create_application(load_settings(environ))
    try:
        # The raw rate is measured before and after the rebuild and averaged,
        # because other load on the machine moves every figure.
        count, before = read_and_decode(app)
        print(f"read + decode    {count:>10,} events in {before:7.1f} s = {count / before:>9,.0f} events/s")

        # Time the reads and decodes inside the rebuild too: their share of the
        # rebuild is the same ratio, measured under the same load.
        stopwatch = Stopwatch()
        app.recorder.select_notifications = stopwatch.wrap("read", app.recorder.select_notifications)
        app.mapper.to_domain_event = stopwatch.wrap("decode", app.mapper.to_domain_event)
        views = all_views()
        for view in views:
            view.apply_page = stopwatch.wrap(f"view {view.name}", view.apply_page)
            view.after_catch_up = stopwatch.wrap(f"after catch-up {view.name}", view.after_catch_up)
        # The views commit through the library's SQLite connections (see projections.db).
        original_commit = SQLiteConnection.commit
        SQLiteConnection.commit = stopwatch.wrap("commit", original_commit)
        runner = ProjectionRunner(app, views)
        started = time.perf_counter()
        runner.rebuild(catch_up=False)
        stopwatch.seconds["drop and create tables"] = time.perf_counter() - started
        runner.catch_up()
        rebuild_seconds = time.perf_counter() - started
        SQLiteConnection.commit = original_commit
        rebuild_rate = count / rebuild_seconds
        print(f"rebuild (all)    {count:>10,} events in {rebuild_seconds:7.1f} s = {rebuild_rate:>9,.0f} events/s")
        app.recorder.select_notifications = type(app.recorder).select_notifications.__get__(app.recorder)
        app.mapper.to_domain_event = type(app.mapper).to_domain_event.__get__(app.mapper)

        count, after = read_and_decode(app)
        print(f"read + decode    {count:>10,} events in {after:7.1f} s = {count / after:>9,.0f} events/s (again)")
        raw_rate = count / ((before + after) / 2)
        print(f"ratio rebuild / raw = {rebuild_rate / raw_rate:.2f} (target 0.33 or more; raw {raw_rate:,.0f} events/s, mean of both reads)")
        inside = stopwatch.seconds.get("read", 0.0) + stopwatch.seconds.get("decode", 0.0)
        print(f"ratio inside the rebuild = {inside / rebuild_seconds:.2f} ({inside:.1f} s of {rebuild_seconds:.1f} s spent reading and decoding)")
        for label, seconds in sorted(stopwatch.seconds.items(), key=lambda item: -item[1]):
            if seconds >= 0.05:
                print(f"    {label:<32} {seconds:7.1f} s")
        with runner.db.transaction(readonly=True) as cursor:
            tickets = cursor.execute("SELECT COUNT(*) FROM ticket_facts").fetchone()[0]
        print(f"views: {', '.join(view.name for view in runner.views)}; ticket_facts rows: {tickets:,}")

        timings = []
        for _ in range(5):
            started = time.perf_counter()
            rows = kpis(runner.db, group_by="priority")
            timings.append(time.perf_counter() - started)
        print(f"kpis(db, group_by='priority'), median of 5: {statistics.median(timings) * 1000:.1f} ms ({len(rows)} rows)")
        print(f"peak RSS of this process (reads, rebuild, queries): {peak_rss_mib():.0f} MiB (target under 1024)")
        runner.close()
    finally:
        app.close()

    # The command in this process, after its imports: opening the store, the
    # catch-up check and the query.
    os.environ.update(environ)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            hub_main(["--log-level", "WARNING", "kpi", "--by", "priority", "--format", "json"])
        timings.append(time.perf_counter() - started)
    print(f"`hub kpi --by priority --format json` in process, median of 5: {statistics.median(timings) * 1000:.0f} ms")

    hub = os.path.join(os.path.dirname(sys.executable), "hub")
    started = time.perf_counter()
    subprocess.run(
        [hub, "--log-level", "WARNING", "kpi", "--by", "priority", "--format", "json"],
        check=True, capture_output=True,
    )
    print(f"`hub kpi --by priority --format json` as a new process: {(time.perf_counter() - started) * 1000:.0f} ms "
          "(with interpreter start-up and the imports of every command)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default: 1000000)")
    parser.add_argument("--path", help="SQLite file to write (default: a new file in a temporary folder)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generator (default: 7)")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the existing store at --path instead of generating one"
    )
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.generate_only:
        generate(args.path, args.events, args.seed)
        return 0

    path = args.path or os.path.join(tempfile.mkdtemp(prefix="hub-bench-"), "hub.sqlite3")
    if args.reuse:
        if not args.path or not os.path.exists(path):
            parser.error("--reuse needs --path of an existing store")
    elif os.path.exists(path):
        parser.error(f"--path {path} exists; give a new file or add --reuse")
    else:
        generate_store(path, args.events, args.seed)
    measure(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
