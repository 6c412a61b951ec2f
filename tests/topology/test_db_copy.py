"""``hub db copy`` from the embedded SQLite store to PostgreSQL, with a webhook subscription."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hub.application import create_application
from hub.domain import Context
from hub.secrets import KEY_FILE_NAME, SecretBox
from hub.settings import load_settings
from hubtest import POSTGRES_URL, requires_postgres
from projections.db import Database
from webhooks.outbox import WebhookDispatchView
from webhooks.worker import DispatchRunner

from .processes import BIN, fresh_schema, query

pytestmark = [requires_postgres, pytest.mark.postgres]


def hub(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hub"), *arguments], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )


def open_tickets(app, count: int) -> None:
    ctx = Context(actor_kind="agent", actor_id="agent-1")
    for number in range(count):
        app.open_ticket(ctx, subject=f"Request {number}", channel="email")


def test_copy_keeps_subscriptions_without_resending(tmp_path: Path):
    source_url = f"sqlite:///{tmp_path}/hub.sqlite3"
    source_env = {"HUB_DATABASE_URL": source_url, "HUB_WEBHOOKS_ALLOW_PRIVATE": "1"}
    created = hub(source_env, "webhooks", "create", "--url", "http://127.0.0.1:9/hooks", "--event-type", "ticket.*")
    assert created.returncode == 0, created.stderr
    endpoint_id = created.stdout.split()[1]
    source = create_application(load_settings(source_env))
    open_tickets(source, 3)
    source.close()
    # The embedded store's key file becomes HUB_CIPHER_KEY of every PostgreSQL process.
    cipher_key = (tmp_path / KEY_FILE_NAME).read_text().strip()

    with fresh_schema("copy") as schema:
        copied = hub({**source_env, "HUB_POSTGRES_SCHEMA": schema}, "db", "copy", "--to", POSTGRES_URL)
        endpoints = query(schema, "SELECT id, status, secret FROM webhook_endpoints")
        messages_after_copy = query(schema, "SELECT COUNT(*) FROM webhook_messages")[0][0]
        logged = query(schema, "SELECT COUNT(*) FROM webhook_event_log")[0][0]

        # New events in the target are dispatched to the copied subscription.
        target = create_application(load_settings({"HUB_DATABASE_URL": POSTGRES_URL}), POSTGRES_SCHEMA=schema)
        open_tickets(target, 1)
        db = Database.for_application(target)
        DispatchRunner(target, WebhookDispatchView(), db).catch_up()
        queued = query(schema, "SELECT endpoint_id, event_type, position FROM webhook_messages")
        head = target.max_position()
        db.close()
        target.close()

    assert copied.returncode == 0, copied.stderr
    assert [(row[0], row[1]) for row in endpoints] == [(endpoint_id, "enabled")]
    assert SecretBox(cipher_key).decrypt(endpoints[0][2]).startswith("whsec_")
    assert messages_after_copy == 0
    # The endpoint's creation and the three tickets.
    assert logged == 4
    assert queued == [(endpoint_id, "ticket.opened", head)]
