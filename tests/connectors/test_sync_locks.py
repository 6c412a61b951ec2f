"""Named locks that keep one sync or job at a time, across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hubtest import POSTGRES_URL, requires_postgres
from connector_helpers import add_connection, hub_app, settings, settings_for  # noqa: F401 (fixtures)

from connectors.locks import exclusive, lock_key
from connectors.sync import SyncBusyError, SyncEngine
from hub.application import create_application


def test_lock_is_exclusive_until_released(app):
    with exclusive(app, "connection-sync:a") as first:
        with exclusive(app, "connection-sync:a") as second:
            assert (first, second) == (True, False)
    with exclusive(app, "connection-sync:a") as again:
        assert again is True


def test_locks_with_other_names_are_independent(app):
    with exclusive(app, "job:report:daily") as first, exclusive(app, "job:report:weekly") as second:
        assert (first, second) == (True, True)


def test_sqlite_lock_excludes_another_process(tmp_path):
    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    holder = textwrap.dedent(f"""
        import sys
        from connectors.locks import exclusive
        from hub.application import create_application
        from hub.settings import load_settings
        app = create_application(load_settings({{"HUB_DATABASE_URL": "{url}"}}))
        with exclusive(app, "connection-sync:shared") as taken:
            print("taken" if taken else "busy", flush=True)
            sys.stdin.readline()
        app.close()
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    app = create_application(settings_for(url))
    try:
        assert process.stdout.readline().strip() == "taken"
        with exclusive(app, "connection-sync:shared") as while_held:
            assert while_held is False
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(timeout=30) == 0
        with exclusive(app, "connection-sync:shared") as after:
            assert after is True
    finally:
        process.kill()
        app.close()


@requires_postgres
@pytest.mark.postgres
def test_postgres_lock_excludes_another_application(postgres_schema):
    pg_settings = settings_for(POSTGRES_URL)
    first = create_application(pg_settings, POSTGRES_SCHEMA=postgres_schema)
    second = create_application(pg_settings, POSTGRES_SCHEMA=postgres_schema)
    try:
        with exclusive(first, "connection-sync:pg") as taken, exclusive(second, "connection-sync:pg") as other:
            assert (taken, other) == (True, False)
    finally:
        first.close()
        second.close()


def test_lock_keys_differ_by_scope():
    assert lock_key("schema_a", "job:x") != lock_key("schema_b", "job:x")
    assert lock_key("schema_a", "job:x") == lock_key("schema_a", "job:x")


def test_sync_while_locked_raises_busy(hub_app, settings):
    connection = add_connection(hub_app, settings)

    with exclusive(hub_app, f"connection-sync:{connection.id}"):
        with pytest.raises(SyncBusyError, match=f"connection {connection.id} is already syncing"):
            SyncEngine(hub_app, settings).sync(connection.id)
