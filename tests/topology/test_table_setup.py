"""HUB_CREATE_TABLE=n: the processes start without DDL once ``hub db init`` has created every table."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from eventsourcing.persistence import ProgrammingError
from eventsourcing.utils import strtobool
from psycopg import sql

from hub.application import create_application
from hub.schema import initialize_database
from hub.settings import ConfigurationError, load_settings, read_create_table
from hub.web import create_app
from hub.web.services import EXTENSION_NAME
from hub.web.storage import SqlTables, TokenStore
from hubtest import POSTGRES_URL, requires_postgres
from webhooks.worker import policy_from_env

from .processes import BIN, fresh_schema, query


@contextmanager
def role_without_ddl(schema: str) -> Iterator[str]:
    """A login role that may read and write the tables of ``schema`` but create nothing there."""
    role = f"topology_{uuid.uuid4().hex[:12]}"
    grants = (
        "CREATE ROLE {role} LOGIN",
        "GRANT USAGE ON SCHEMA {schema} TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    )
    names = {"role": sql.Identifier(role), "schema": sql.Identifier(schema)}
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        for statement in grants:
            connection.execute(sql.SQL(statement).format(**names))
    try:
        yield role
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP OWNED BY {role}").format(**names))
            connection.execute(sql.SQL("DROP ROLE {role}").format(**names))


def initialize(schema: str) -> str:
    """Create every table in ``schema`` as ``hub db init`` does and return an admin token."""
    app = create_application(load_settings({"HUB_DATABASE_URL": POSTGRES_URL}), POSTGRES_SCHEMA=schema)
    try:
        initialize_database(app)
        return TokenStore(SqlTables(app)).create("admin", "setup-test")[1]
    finally:
        app.close()


def web_app(database_url: str, schema: str):
    return create_app({
        "TESTING": True, "DATABASE_URL": database_url, "PERSISTENCE_ENV": {"POSTGRES_SCHEMA": schema},
        "RUN_PROJECTIONS": False,
    })


@pytest.mark.parametrize("value", ["", "y", "yes", "t", "true", "on", "1", "Y", "TRUE", "n", "no", "f", "false", "off", "0", "N"])
def test_create_table_reads_library_words(value):
    expected = True if value == "" else strtobool(value)

    assert read_create_table({"HUB_CREATE_TABLE": value}) is expected


@pytest.mark.parametrize("value", ["maybe", " n", "2", "none"])
def test_create_table_rejects_other_words(value):
    with pytest.raises(ConfigurationError, match="^HUB_CREATE_TABLE .* is invalid; use n to leave table creation"):
        read_create_table({"HUB_CREATE_TABLE": value})


def test_create_table_defaults_to_yes():
    assert load_settings({}).create_tables is True


@pytest.mark.parametrize(("value", "seconds"), [("12", 12.0), ("10.5", 10.5), ("600", 600.0)])
def test_webhook_lease_read_from_environment(value, seconds):
    assert policy_from_env({"HUB_WEBHOOKS_LEASE_SECONDS": value}).lease_seconds == seconds


@pytest.mark.parametrize("value", ["10", "3", "0", "-5", "abc", "inf", "nan"])
def test_webhook_lease_rejects_short_or_bad_values(value):
    with pytest.raises(ConfigurationError, match="^HUB_WEBHOOKS_LEASE_SECONDS .* is invalid; use seconds greater than"):
        policy_from_env({"HUB_WEBHOOKS_LEASE_SECONDS": value})


@requires_postgres
@pytest.mark.postgres
def test_web_without_db_init_names_command(monkeypatch):
    monkeypatch.setenv("HUB_CREATE_TABLE", "n")
    with fresh_schema() as schema:
        with pytest.raises(ConfigurationError, match="run 'hub db init', because HUB_CREATE_TABLE is off"):
            web_app(POSTGRES_URL, schema)

        tables = query(schema, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
    assert tables == []


@requires_postgres
@pytest.mark.postgres
def test_web_runs_without_ddl_rights(monkeypatch):
    monkeypatch.setenv("HUB_CREATE_TABLE", "n")
    with fresh_schema() as schema:
        token = initialize(schema)
        with role_without_ddl(schema) as role:
            restricted_url = f"postgresql://{role}@127.0.0.1:5432/test"
            app = web_app(restricted_url, schema)
            client = app.test_client()
            headers = {"Authorization": f"Bearer {token}"}

            created = client.post("/api/v1/tickets", json={"subject": "No DDL here"}, headers=headers)
            applied = app.extensions[EXTENSION_NAME].catch_up()
            listed = client.get("/api/v1/tickets", headers=headers).get_json()["items"]
            app.extensions[EXTENSION_NAME].close()

    assert created.status_code == 201
    assert applied == 1
    assert [item["id"] for item in listed] == [created.get_json()["id"]]


@requires_postgres
@pytest.mark.postgres
def test_web_creating_tables_needs_ddl_rights(monkeypatch):
    # The same kind of role with the default HUB_CREATE_TABLE=y: its CREATE TABLE IF
    # NOT EXISTS statements are rejected even though every table exists, which shows
    # that role_without_ddl grants no DDL rights.
    monkeypatch.delenv("HUB_CREATE_TABLE", raising=False)
    with fresh_schema() as schema:
        initialize(schema)
        with role_without_ddl(schema) as role:
            restricted_url = f"postgresql://{role}@127.0.0.1:5432/test"
            with pytest.raises(ProgrammingError, match="permission denied for schema"):
                web_app(restricted_url, schema)


def test_db_init_ignores_create_table_off(tmp_path):
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3", "HUB_CREATE_TABLE": "n"}

    result = subprocess.run(
        [str(BIN / "hub"), "db", "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "hub.sqlite3") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"stored_events", "projection_positions", "ticket_facts", "hub_api_tokens", "webhook_messages"} <= tables
