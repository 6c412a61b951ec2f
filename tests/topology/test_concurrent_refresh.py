"""Two workers refreshing the KPI summary of one PostgreSQL schema at the same time."""

from __future__ import annotations

import threading

import psycopg
import pytest

from hub.application import create_application
from hub.domain import Context
from hub.settings import load_settings
from hubtest import POSTGRES_URL, requires_postgres
from projections.kpis import SUMMARY_LOCK_CLASS, refresh_summary, summary_rows
from projections.registry import all_views
from projections.runner import ProjectionRunner

from .processes import fresh_schema, wait_until

pytestmark = [requires_postgres, pytest.mark.postgres]


def waiting_sessions(schema: str) -> list[str]:
    """Return the queries of sessions in the test database that wait for a lock, other than this one."""
    with psycopg.connect(POSTGRES_URL) as connection:
        rows = connection.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


def test_summary_refresh_waits_for_other_refresh():
    with fresh_schema() as schema:
        app = create_application(load_settings({"HUB_DATABASE_URL": POSTGRES_URL}), POSTGRES_SCHEMA=schema)
        runner = ProjectionRunner(app, all_views())
        ctx = Context(actor_kind="agent", actor_id="agent-1")
        for number in range(3):
            app.open_ticket(ctx, subject=f"Request {number}", channel="email")
        runner.catch_up()
        errors: list[BaseException] = []

        def refresh() -> None:
            try:
                refresh_summary(runner.db)
            except BaseException as error:  # noqa: BLE001 - the test reports any failure
                errors.append(error)

        # Another worker's refresh in flight: it has rewritten every row but not committed yet.
        with psycopg.connect(POSTGRES_URL, options=f"-c search_path={schema}") as other:
            other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (SUMMARY_LOCK_CLASS,))
            stored = other.execute("SELECT dimension, rows, sources, refreshed_at FROM kpi_summary").fetchall()
            other.execute("DELETE FROM kpi_summary")
            with other.cursor() as cursor:
                cursor.executemany("INSERT INTO kpi_summary VALUES (%s, %s, %s, %s)", stored)
            thread = threading.Thread(target=refresh)
            thread.start()
            wait_until(lambda: not thread.is_alive() or waiting_sessions(schema), 30, lambda: f"errors: {errors}")
            blocked = thread.is_alive()
            other.commit()
        thread.join(30)

        assert blocked
        assert errors == []
        with runner.db.transaction(readonly=True) as cursor:
            cursor.execute("SELECT COUNT(*) FROM kpi_summary")
            assert cursor.fetchone() == (len(stored),)
            assert summary_rows(cursor, None)[0]["tickets"] == 3
        runner.close()
        app.close()
