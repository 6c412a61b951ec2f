"""The projection runner: exactly-once application, positions, rebuilds and following."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub.application import create_application
from hub.cli import main
from hub.domain import Context, Ticket
from hub.settings import load_settings
from projections.db import Database
from projections.runner import ProjectionRunner, View, start_in_background
from projections.tickets import TicketFactsView
from hubtest import requires_postgres, store_url

REPOSITORY = Path(__file__).resolve().parent.parent


class OpenedCount(View):
    """Counts opened tickets, one row per event, so a double application shows as a duplicate key."""

    name = "opened_count"
    tables = ("opened_events",)
    topics = (Ticket.Opened,)

    def create(self, cursor):
        cursor.execute("CREATE TABLE IF NOT EXISTS opened_events (position BIGINT PRIMARY KEY, ticket_id TEXT)")

    def apply_page(self, cursor, events):
        cursor.executemany(
            "INSERT INTO opened_events (position, ticket_id) VALUES (?, ?)",
            [(position, str(event.originator_id)) for position, event in events],
        )


class ReplyTotal(View):
    """Adds up replies in one counter row, so a page applied twice would inflate the total."""

    name = "reply_total"
    tables = ("reply_total",)
    topics = (Ticket.AgentReplied,)

    def create(self, cursor):
        cursor.execute("CREATE TABLE IF NOT EXISTS reply_total (id INTEGER PRIMARY KEY, replies INTEGER NOT NULL)")
        cursor.execute("INSERT INTO reply_total (id, replies) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")

    def apply_page(self, cursor, events):
        cursor.execute("UPDATE reply_total SET replies = replies + ? WHERE id = 1", (len(events),))


def record_tickets(app, count, replies=1):
    ctx = Context(actor_kind="agent", actor_id="agent-1")
    positions = []
    for index in range(count):
        outcome = app.open_ticket(ctx, subject=f"Request {index}", channel="email")
        positions.extend(outcome.positions)
        for _ in range(replies):
            positions.extend(app.execute(Ticket, outcome.aggregate.id, "reply", ctx, body="On it").positions)
    return positions


def scalar(db, sql):
    with db.transaction(readonly=True) as cursor:
        return cursor.execute(sql).fetchone()[0]


class SimulatedCrash(Exception):
    pass


class CrashingDatabase(Database):
    """A database whose next position update raises, after the view rows were written."""

    def __init__(self, inner):
        super().__init__(inner.dialect, inner._backend)
        self.crash_next_position_update = True

    @contextmanager
    def transaction(self, *, readonly=False):
        with super().transaction(readonly=readonly) as cursor:
            outer = self
            execute = cursor.execute

            def crashing_execute(sql, params=()):
                if outer.crash_next_position_update and sql.startswith("UPDATE projection_positions"):
                    outer.crash_next_position_update = False
                    raise SimulatedCrash
                return execute(sql, params)

            cursor.execute = crashing_execute
            yield cursor


def test_catch_up_applies_each_event_once(app):
    record_tickets(app, 10)
    runner = ProjectionRunner(app, [OpenedCount(), ReplyTotal()])

    applied = runner.catch_up(page_size=3)

    assert applied == 20
    assert scalar(runner.db, "SELECT COUNT(*) FROM opened_events") == 10
    assert scalar(runner.db, "SELECT replies FROM reply_total") == 10
    assert runner.catch_up() == 0
    assert scalar(runner.db, "SELECT replies FROM reply_total") == 10
    runner.close()


def test_crash_before_position_is_stored(app):
    record_tickets(app, 10, replies=0)
    crashing = CrashingDatabase(Database.for_application(app))
    runner = ProjectionRunner(app, [ReplyTotal(), OpenedCount()], crashing)
    runner.setup()

    with pytest.raises(SimulatedCrash):
        runner.catch_up(page_size=4)

    # The rows of the crashed page rolled back with the position.
    assert scalar(crashing, "SELECT COUNT(*) FROM opened_events") == 0
    assert [row["position"] for row in runner.status()] == [0, 0]

    ProjectionRunner(app, [ReplyTotal(), OpenedCount()], crashing).catch_up(page_size=4)
    assert scalar(crashing, "SELECT COUNT(*) FROM opened_events") == 10


def test_process_killed_mid_page_applies_once(tmp_path):
    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    app = create_application(load_settings({"HUB_DATABASE_URL": url}))
    record_tickets(app, 10, replies=1)
    child = textwrap.dedent(f"""
        import os
        from hub.application import create_application
        from hub.settings import load_settings
        from hub.domain import Ticket
        from projections.runner import ProjectionRunner, View

        class DyingReplyTotal(View):
            name = "reply_total"
            topics = (Ticket.AgentReplied,)
            pages = 0

            def create(self, cursor):
                cursor.execute(
                    "CREATE TABLE IF NOT EXISTS reply_total (id INTEGER PRIMARY KEY, replies INTEGER NOT NULL)"
                )
                cursor.execute("INSERT INTO reply_total (id, replies) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")

            def apply_page(self, cursor, events):
                cursor.execute("UPDATE reply_total SET replies = replies + ? WHERE id = 1", (len(events),))
                DyingReplyTotal.pages += 1
                if DyingReplyTotal.pages == 2:
                    os._exit(17)  # killed after writing its rows, before the commit

        app = create_application(load_settings({{"HUB_DATABASE_URL": {url!r}}}))
        ProjectionRunner(app, [DyingReplyTotal()]).catch_up(page_size=6)
    """)

    result = subprocess.run([sys.executable, "-c", child], cwd=REPOSITORY, capture_output=True, text=True)

    assert result.returncode == 17, result.stderr
    runner = ProjectionRunner(app, [ReplyTotal()])
    assert runner.status()[0]["position"] == 6
    assert scalar(runner.db, "SELECT replies FROM reply_total") == 3
    runner.catch_up(page_size=6)
    assert scalar(runner.db, "SELECT replies FROM reply_total") == 10
    runner.close()
    app.close()


def test_status_reports_position_and_lag(app):
    record_tickets(app, 5)
    runner = ProjectionRunner(app, [OpenedCount()])

    before = runner.status()
    runner.catch_up()
    after = runner.status()

    assert before == [{"name": "opened_count", "position": 0, "lag": 10}]
    assert after == [{"name": "opened_count", "position": 10, "lag": 0}]
    runner.close()


def test_rebuild_one_view_replays_it_alone(app):
    record_tickets(app, 4)
    runner = ProjectionRunner(app, [OpenedCount(), ReplyTotal()])
    runner.catch_up()
    record_tickets(app, 2)

    applied = runner.rebuild("reply_total", page_size=2)

    # 6 replies replayed for reply_total and 2 new openings for opened_count.
    assert applied == 8
    assert scalar(runner.db, "SELECT replies FROM reply_total") == 6
    # The other view kept its rows and position, then caught up on its own events.
    assert scalar(runner.db, "SELECT COUNT(*) FROM opened_events") == 6
    assert {row["name"]: row["position"] for row in runner.status()} == {"opened_count": 12, "reply_total": 12}
    runner.close()


def test_rebuild_unknown_view_raises(memory_app):
    runner = ProjectionRunner(memory_app, [OpenedCount()])

    with pytest.raises(LookupError, match="'nope' is not known; use one of opened_count"):
        runner.rebuild("nope")


def test_duplicate_view_names_rejected(memory_app):
    with pytest.raises(ValueError, match="'opened_count' is used by more than one view"):
        ProjectionRunner(memory_app, [OpenedCount(), OpenedCount()])


def test_changed_view_version_rebuilds(memory_app):
    record_tickets(memory_app, 3, replies=0)
    runner = ProjectionRunner(memory_app, [OpenedCount()])
    runner.catch_up()
    with runner.db.transaction() as cursor:
        cursor.execute("INSERT INTO opened_events (position, ticket_id) VALUES (999, 'stray')")

    class OpenedCountV2(OpenedCount):
        version = 2

    second = ProjectionRunner(memory_app, [OpenedCountV2()], runner.db)
    second.catch_up()

    assert scalar(runner.db, "SELECT COUNT(*) FROM opened_events") == 3
    assert scalar(runner.db, "SELECT version FROM projection_positions WHERE name = 'opened_count'") == 2


def test_concurrent_runners_apply_each_page_once(app):
    record_tickets(app, 30)
    runners = [ProjectionRunner(app, [ReplyTotal()]) for _ in range(3)]
    runners[0].setup()
    errors = []

    def follow(runner):
        try:
            runner.catch_up(page_size=5)
        except Exception as error:  # the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=follow, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert scalar(runners[0].db, "SELECT replies FROM reply_total") == 30
    for runner in runners:
        runner.close()


def test_background_runner_follows_new_events(app):
    record_tickets(app, 2)
    handle = start_in_background(app, [OpenedCount()], poll_interval=0.2)
    try:
        positions = record_tickets(app, 3)

        handle.wait(positions[-1], timeout=10)

        assert scalar(handle.runner.db, "SELECT COUNT(*) FROM opened_events") == 5
        assert handle.error is None
    finally:
        handle.stop()


def test_wait_times_out_without_runner(memory_app):
    runner = ProjectionRunner(memory_app, [OpenedCount()])
    runner.setup()
    positions = record_tickets(memory_app, 1, replies=0)

    with pytest.raises(TimeoutError, match=f"did not reach position {positions[-1]}"):
        runner.wait(positions[-1], timeout=0.2)


class FlakyReplyTotal(ReplyTotal):
    """Fails its first page as if another process held the SQLite write lock."""

    failures_left = 1

    def apply_page(self, cursor, events):
        if FlakyReplyTotal.failures_left:
            FlakyReplyTotal.failures_left -= 1
            raise sqlite3.OperationalError("database is locked")
        super().apply_page(cursor, events)


class BrokenView(ReplyTotal):
    def apply_page(self, cursor, events):
        raise ZeroDivisionError("bug in the view")


def test_background_runner_retries_transient_error(memory_app):
    positions = record_tickets(memory_app, 3)
    handle = start_in_background(memory_app, [FlakyReplyTotal()], poll_interval=0.05)
    try:
        handle.wait(positions[-1], timeout=10)

        assert scalar(handle.runner.db, "SELECT replies FROM reply_total") == 3
        assert FlakyReplyTotal.failures_left == 0
        assert handle.error is None
    finally:
        handle.stop()


def test_background_runner_stops_on_view_bug(memory_app):
    record_tickets(memory_app, 1)
    handle = start_in_background(memory_app, [BrokenView()], poll_interval=0.05)
    ended = handle.join(timeout=10)

    assert ended
    assert isinstance(handle.error, ZeroDivisionError)
    assert handle.runner.status()[0]["position"] == 0
    handle.stop()


@pytest.mark.parametrize(
    "kind", ["sqlite-file", pytest.param("postgresql", marks=[requires_postgres, pytest.mark.postgres])]
)
def test_worker_process_follows_and_stops(kind, request, tmp_path):
    # A shared in-memory store is private to one process, so it has no worker case.
    settings_environ = {"HUB_DATABASE_URL": store_url(kind, tmp_path)}
    extra = {"POSTGRES_SCHEMA": request.getfixturevalue("postgres_schema")} if kind == "postgresql" else {}
    environ = {**os.environ, **settings_environ, **extra}
    app = create_application(load_settings(settings_environ), **extra)
    record_tickets(app, 2)
    worker = subprocess.Popen(
        [sys.executable, "-c", "import sys; from hub.cli import main; sys.exit(main(sys.argv[1:]))",
         "worker", "--no-webhooks", "--poll-interval", "0.2"],
        cwd=REPOSITORY, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        observer = ProjectionRunner(app, [TicketFactsView()])
        positions = record_tickets(app, 3)

        observer.wait(positions[-1], timeout=30)

        assert scalar(observer.db, "SELECT COUNT(*) FROM ticket_facts") == 5
        assert scalar(observer.db, "SELECT SUM(public_reply_count) FROM ticket_facts") == 5
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert "Projection runner stopped at position 10" in errors
    observer.close()
    app.close()


def test_projections_commands(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    app = create_application(load_settings({"HUB_DATABASE_URL": url}))
    record_tickets(app, 5)
    app.close()
    monkeypatch.setenv("HUB_DATABASE_URL", url)

    assert main(["projections", "status", "--format", "json"]) == 0
    before = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert main(["projections", "rebuild", "tickets"]) == 0
    rebuilt = capsys.readouterr().out
    assert main(["projections", "status", "--format", "json"]) == 0
    after = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert main(["projections", "rebuild", "nope"]) == 2

    assert before["tickets"] == {"name": "tickets", "position": 0, "lag": 10}
    assert rebuilt == "Rebuilt tickets: 10 events applied\n"
    assert after["tickets"] == {"name": "tickets", "position": 10, "lag": 0}
    # The rebuild ends with a catch-up of every view.
    assert {row["lag"] for row in after.values()} == {0}
    assert "projection 'nope' is not known" in capsys.readouterr().err


def test_worker_once_catches_up(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    app = create_application(load_settings({"HUB_DATABASE_URL": url}))
    record_tickets(app, 3)
    app.close()
    monkeypatch.setenv("HUB_DATABASE_URL", url)

    code = main(["worker", "--once"])

    assert code == 0
    assert capsys.readouterr().out == "Applied 6 events; views at position 6\n"


def test_event_store_keeps_its_synchronous_level(tmp_path):
    app = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3"}))

    def level():
        with app.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA synchronous")
            return cursor.fetchone()[0]

    before = level()
    record_tickets(app, 3)
    runner = ProjectionRunner(app, [ReplyTotal()])
    runner.catch_up(page_size=2)

    # The pool reuses its idle connection, so this reads the one the views wrote through.
    assert level() == before
    runner.close()
    app.close()
