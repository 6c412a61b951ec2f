"""Named locks that exclude other threads and other processes, without waiting.

A sync of one connection, or one scheduled job, must never run twice at once,
even when a web worker, the embedded scheduler and a `clock` process share the
store. `exclusive(app, name)` takes the lock if it is free and reports whether
it did; the caller skips its work when another holder has it.

* PostgreSQL: a session-level `pg_try_advisory_lock` on a connection of its own,
  held until the block ends. The key is a 64-bit hash of the schema and name,
  so tests in separate schemas do not share locks.
* SQLite file store: `fcntl.flock` on a file in the `<database>.locks/` folder.
  flock locks belong to an open file description, so two opens in one process
  exclude each other as well as two processes do.
* SQLite in-memory store: only one process can see it, so a lock inside this
  process is enough.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


@contextmanager
def exclusive(app: Any, name: str) -> Iterator[bool]:
    """Hold the lock `name` for the block if it is free; yield whether it was acquired."""
    module = type(app.factory).__module__
    if module.startswith("eventsourcing.postgres"):
        with _postgres_lock(app, name) as acquired:
            yield acquired
        return
    if module.startswith("eventsourcing.sqlite"):
        dbname = str(app.factory.env.get("SQLITE_DBNAME") or "")
        if dbname and "mode=memory" not in dbname and dbname != ":memory:":
            with _file_lock(Path(dbname), name) as acquired:
                yield acquired
            return
        with _process_lock(f"{dbname}\n{name}") as acquired:
            yield acquired
        return
    with _process_lock(f"{id(app)}\n{name}") as acquired:
        yield acquired


def lock_key(scope: str, name: str) -> int:
    """Return a signed 64-bit advisory-lock key for `name` within `scope`."""
    digest = hashlib.blake2b(f"{scope}\n{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _process_lock(key: str) -> Iterator[bool]:
    with _process_locks_guard:
        lock = _process_locks.setdefault(key, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


@contextmanager
def _file_lock(database: Path, name: str) -> Iterator[bool]:
    import fcntl

    folder = database.parent / f"{database.name}.locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


@contextmanager
def _postgres_lock(app: Any, name: str) -> Iterator[bool]:
    import psycopg

    env = app.factory.env
    schema = app.recorder.datastore.schema
    key = lock_key(schema, name)
    # The lock lives as long as this session, so it gets a connection of its own
    # rather than one from the application's pool.
    connection = psycopg.connect(
        dbname=env.get("POSTGRES_DBNAME"),
        host=env.get("POSTGRES_HOST"),
        port=env.get("POSTGRES_PORT") or "5432",
        user=env.get("POSTGRES_USER"),
        password=env.get("POSTGRES_PASSWORD") or "",
        autocommit=True,
    )
    try:
        row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        acquired = bool(row and row[0])
        try:
            yield acquired
        finally:
            if acquired:
                connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()
