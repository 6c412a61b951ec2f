"""``hub replay`` through the real command line, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from hub.application import create_application
from hub.domain import Context, Ticket
from hub.settings import load_settings

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
    )


@pytest.fixture
def recorded_ticket(tmp_path):
    env = {"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3"}
    app = create_application(load_settings(env))
    ctx = Context(actor_kind="agent", actor_id="agent-2", occurred_at=T0)
    ticket = app.open_ticket(ctx, subject="Laptop will not boot", channel="phone").aggregate
    later = Context(actor_kind="agent", actor_id="agent-2", occurred_at=T0 + timedelta(hours=1))
    app.execute(Ticket, ticket.id, "prioritize", later, priority="high")
    app.close()
    return ticket.id, env


def test_replay_json_at_version(recorded_ticket):
    ticket_id, env = recorded_ticket

    result = hub("replay", str(ticket_id), "--version", "1", "--format", "json", env=env)

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["state"]["version"] == 1
    assert output["state"]["priority"] is None
    assert [entry["type"] for entry in output["history"]] == ["ticket.opened"]


def test_replay_as_of_instant(recorded_ticket):
    ticket_id, env = recorded_ticket

    result = hub("replay", str(ticket_id), "--as-of", "2024-03-01T10:30:00+00:00", "--format", "json", env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"]["priority"] == "high"


def test_replay_table_lists_each_event(recorded_ticket):
    ticket_id, env = recorded_ticket

    result = hub("replay", str(ticket_id), env=env)

    lines = result.stdout.splitlines()
    assert lines[0].split() == ["version", "position", "type", "occurred_at", "recorded_at", "actor", "source"]
    assert lines[1].split()[:3] == ["1", "1", "ticket.opened"]
    assert lines[2].split()[:3] == ["2", "2", "ticket.prioritized"]
    assert "  priority: high" in lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "not-a-uuid"], "argument TICKET_ID: 'not-a-uuid' is not a UUID"),
        (["replay", "00000000-0000-4000-8000-000000000009", "--version", "0"], "argument --version: '0' is not a whole number of 1 or more"),
        (["replay", "00000000-0000-4000-8000-000000000009", "--as-of", "2024-03-01T10:00"], "has no UTC offset; add one such as +00:00"),
        (["replay", "00000000-0000-4000-8000-000000000009", "--version", "2", "--as-of", "2024-03-01T10:00+00:00"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(recorded_ticket, args, message):
    _, env = recorded_ticket

    result = hub(*args, env=env)

    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_ticket_exits_2(recorded_ticket):
    _, env = recorded_ticket

    result = hub("replay", "00000000-0000-4000-8000-000000000009", env=env)

    assert result.returncode == 2
    assert result.stderr.strip().endswith("ticket 00000000-0000-4000-8000-000000000009 not found")


def test_bad_database_url_exits_2():
    result = hub("replay", "00000000-0000-4000-8000-000000000009", env={"HUB_DATABASE_URL": "oracle://x"})

    assert result.returncode == 2
    assert "HUB_DATABASE_URL 'oracle://x' is invalid; accepted forms:" in result.stderr


def test_unreachable_store_is_one_line_exit_1():
    env = {"HUB_DATABASE_URL": "postgresql://hub:secret-pw@127.0.0.1:1/hub", "HUB_POSTGRES_CONNECT_TIMEOUT": "1"}

    result = hub("replay", "00000000-0000-4000-8000-000000000009", env=env)

    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("hub replay: error:")]
    assert lines == [
        "hub replay: error: the store at postgresql://hub:***@127.0.0.1:1/hub cannot be used: "
        "couldn't get a connection after 1.00 sec; check that the database is running and that "
        "HUB_DATABASE_URL is right"
    ]
    assert "secret-pw" not in result.stderr
