"""``hub db init``, ``hub db copy`` and ``hub config check`` through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from hubtest import POSTGRES_URL, requires_postgres
from hub.application import create_application
from hub.cli.db import copy_events
from hub.domain import Context, Ticket
from hub.settings import load_settings

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
    )


def record_tickets(app, count: int) -> list:
    ids = []
    for number in range(count):
        ctx = Context(actor_kind="agent", actor_id="agent-1", occurred_at=T0 + timedelta(minutes=number))
        ticket = app.open_ticket(ctx, subject=f"Ticket {number}", channel="email").aggregate
        app.execute(Ticket, ticket.id, "prioritize", ctx, priority=("high", "low")[number % 2])
        ids.append(ticket.id)
    return ids


def histories(app, ids) -> list:
    return [
        [(e["type"], e["occurred_at"], e["actor"], e["data"]) for e in app.history(Ticket, ticket_id)]
        for ticket_id in ids
    ]


def test_copy_keeps_order_and_content(tmp_path):
    source = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/a.sqlite3"}))
    target = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/b.sqlite3"}))
    ids = record_tickets(source, 5)

    copied, total = copy_events(source, target, page_size=3)

    assert (copied, total) == (10, 10)
    assert histories(target, ids) == histories(source, ids)
    source_topics = [n.topic for n in source.recorder.select_notifications(start=1, limit=100)]
    target_topics = [n.topic for n in target.recorder.select_notifications(start=1, limit=100)]
    assert target_topics == source_topics
    source.close()
    target.close()


def test_interrupted_copy_resumes_without_duplicates(tmp_path):
    source = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/a.sqlite3"}))
    target = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/b.sqlite3"}))
    ids = record_tickets(source, 4)
    first_page = source.recorder.select_notifications(start=1, limit=3)
    target.recorder.insert_events(first_page)

    copied, total = copy_events(source, target)

    assert (copied, total) == (5, 8)
    assert histories(target, ids) == histories(source, ids)
    source.close()
    target.close()


@requires_postgres
@pytest.mark.postgres
def test_cli_copy_sqlite_to_postgresql(tmp_path, postgres_schema):
    sqlite_url = f"sqlite:///{tmp_path}/hub.sqlite3"
    source = create_application(load_settings({"HUB_DATABASE_URL": sqlite_url}))
    ids = record_tickets(source, 3)
    expected = histories(source, ids)
    source.close()

    result = hub("db", "copy", "--to", POSTGRES_URL, env={"HUB_DATABASE_URL": sqlite_url, "HUB_POSTGRES_SCHEMA": postgres_schema})

    assert result.returncode == 0, result.stderr
    assert "Copied 6 events (6 in the target)" in result.stdout
    target = create_application(load_settings({"HUB_DATABASE_URL": POSTGRES_URL}), POSTGRES_SCHEMA=postgres_schema)
    assert histories(target, ids) == expected
    target.close()


def test_cli_copy_rejects_bad_target(tmp_path):
    result = hub("db", "copy", "--to", "mongodb://x", env={"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3"})

    assert result.returncode == 2
    assert "--to 'mongodb://x' is invalid; accepted forms:" in result.stderr


def test_cli_db_init_is_idempotent(tmp_path):
    env = {"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3"}

    first = hub("db", "init", env=env)
    second = hub("db", "init", env=env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout
    assert first.stdout.startswith(f"Database ready at sqlite:///{tmp_path}/hub.sqlite3: event store")


def test_config_check_masks_secrets():
    env = {"HUB_DATABASE_URL": "postgresql://hub:hunter2@db.internal:5432/hub", "HUB_CIPHER_KEY": "Y29uZmlnLWNoZWNrLWtleS1pcy1ub3QtcHJpbnRlZCE="}

    result = hub("config", "check", env=env)

    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "Y29uZmlnLWNoZWNrLWtleS1pcy1ub3QtcHJpbnRlZCE=" not in result.stdout
    assert "postgresql://hub:***@db.internal:5432/hub" in result.stdout
    assert "HUB_CIPHER_KEY                set (hidden)" in result.stdout


def test_config_check_fails_on_bad_setting():
    result = hub("config", "check", env={"HUB_CONNECTORS_ALLOW_PRIVATE": "perhaps"})

    assert result.returncode == 2
    assert result.stderr.strip() == "hub config: error: HUB_CONNECTORS_ALLOW_PRIVATE 'perhaps' is invalid; use 1 or 0"


# base64 of 20 bytes, which AES does not take, and a text that is not base64.
TWENTY_BYTE_KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODk="


@pytest.mark.parametrize(
    ("key", "problem"),
    [(TWENTY_BYTE_KEY, "it decodes to 20 bytes"), ("not-a-key", "it is not valid base64")],
)
def test_config_check_rejects_bad_cipher_key(key, problem):
    result = hub("config", "check", env={"HUB_CIPHER_KEY": key})

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"hub config: error: HUB_CIPHER_KEY is invalid: {problem}, and AES needs base64 of 16, 24 or 32 bytes; "
        "generate one with 'hub keys generate'"
    )
    assert key not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HUB_SESSION_COOKIE_SECURE", "always", "HUB_SESSION_COOKIE_SECURE 'always' is invalid; use 1 or 0"),
        ("HUB_POSTGRES_PRE_PING", "sometimes", "HUB_POSTGRES_PRE_PING 'sometimes' is invalid; use y or n"),
        ("HUB_WEBHOOKS_CONCURRENCY", "0", "HUB_WEBHOOKS_CONCURRENCY '0' is invalid; use a whole number of 1 or more"),
    ],
)
def test_config_check_rejects_bad_flag(name, value, message):
    result = hub("config", "check", env={name: value})

    assert result.returncode == 2
    assert result.stderr.strip() == f"hub config: error: {message}"


def test_config_check_groups_by_reader():
    env = {
        "HUB_SESSION_COOKIE_SECURE": "on", "HUB_POSTGRES_PRE_PING": "yes",
        "HUB_POSTGRES_LOCK_TIMEOUT": "5", "HUB_WEBHOOK_CONCURRENCY": "4",
    }

    result = hub("config", "check", env=env)

    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split(None, 1)[1] for line in result.stdout.splitlines() if line.startswith("HUB_")}
    assert lines["HUB_SESSION_COOKIE_SECURE"] == "1"
    assert lines["HUB_POSTGRES_PRE_PING"] == "y"
    assert lines["HUB_POSTGRES_LOCK_TIMEOUT"] == "set (event store library setting POSTGRES_LOCK_TIMEOUT)"
    assert "HUB_WEBHOOK_CONCURRENCY" not in lines
    assert result.stderr.strip() == (
        "hub config: warning: HUB_WEBHOOK_CONCURRENCY is not a setting of the hub or its event store library, "
        "so nothing reads it; check the spelling"
    )


def test_cli_copy_skips_dispatch(tmp_path):
    import sqlite3

    from webhooks.outbox import WebhookDispatchView

    source = create_application(load_settings({"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/a.sqlite3"}))
    record_tickets(source, 2)
    source.close()

    result = hub("db", "copy", "--to", f"sqlite:///{tmp_path}/b.sqlite3", env={"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/a.sqlite3"})

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "b.sqlite3") as connection:
        positions = dict(connection.execute("SELECT name, position FROM projection_positions"))
        tickets = connection.execute("SELECT COUNT(*) FROM ticket_facts").fetchone()[0]
    assert positions[WebhookDispatchView.name] == 4
    assert positions["tickets"] == 4
    assert tickets == 2
