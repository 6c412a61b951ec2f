"""Connections to the event store's database, for the view tables.

Views live next to the events (same SQLite file, same PostgreSQL database and
schema), so that a view's rows and its position commit in one transaction and
analysts can query everything in one place.

One SQL dialect serves both backends: write statements with ``?`` placeholders
and portable SQL (``INSERT ... ON CONFLICT ... DO UPDATE``, ``COALESCE``,
``CASE``). On PostgreSQL the cursor turns ``?`` into ``%s``, so a statement must
not contain a literal question mark; a literal ``%`` is escaped for you.
Rows come back as tuples on both backends.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hub.settings import ConfigurationError, Settings

logger = logging.getLogger(__name__)

# SQLite busy timeout, in seconds, for connections this module opens itself.
SQLITE_BUSY_TIMEOUT = 30.0

# How often a write transaction on SQLite retries BEGIN IMMEDIATE when another
# process holds the write lock for longer than the busy timeout.
SQLITE_BEGIN_RETRIES = 5


class Cursor:
    """A DB-API cursor that accepts ``?`` placeholders on both backends and returns tuples."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self._raw = raw
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._raw.execute(self._translate(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._raw.executemany(self._translate(sql), rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._raw.fetchall()]

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._raw.fetchone()
        return None if row is None else tuple(row)

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)

    def _translate(self, sql: str) -> str:
        if self.dialect == "sqlite":
            return sql
        return _postgres_statement(sql)


_POSTGRES_STATEMENTS: dict[str, str] = {}


def _postgres_statement(sql: str) -> str:
    translated = _POSTGRES_STATEMENTS.get(sql)
    if translated is None:
        translated = sql.replace("%", "%%").replace("?", "%s")
        if len(_POSTGRES_STATEMENTS) < 10_000:
            _POSTGRES_STATEMENTS[sql] = translated
    return translated


def table_exists(cursor: Cursor, table: str) -> bool:
    """Tell whether a table exists (in the current schema on PostgreSQL)."""
    if cursor.dialect == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    else:
        cursor.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
    return cursor.fetchone() is not None


class Database:
    """Transactions on the event store's database, for view tables and their positions.

    Build it with :meth:`for_application` (the usual way: it follows the
    application's store, including a ``POSTGRES_SCHEMA`` passed to the
    application) or :meth:`from_settings` (a separate process that has only the
    settings). ``dialect`` is ``"sqlite"`` or ``"postgresql"``.
    """

    def __init__(self, dialect: str, backend: Any) -> None:
        self.dialect = dialect
        self._backend = backend

    @classmethod
    def for_application(cls, app: Any) -> Database:
        """Connect to the database of ``app``'s event store.

        On SQLite the connections are borrowed from the application's own pool,
        so that views and events share its locks. Without that, a shared
        in-memory store fails with "database table is locked" errors.
        """
        module = type(app.factory).__module__
        if module.startswith("eventsourcing.sqlite"):
            return cls("sqlite", _BorrowedSQLite(app.recorder.datastore))
        if module.startswith("eventsourcing.postgres"):
            env = app.factory.env
            params = {
                "dbname": env.get("POSTGRES_DBNAME"),
                "host": env.get("POSTGRES_HOST"),
                "port": env.get("POSTGRES_PORT") or "5432",
                "user": env.get("POSTGRES_USER"),
                "password": env.get("POSTGRES_PASSWORD") or "",
            }
            schema = app.recorder.datastore.schema
            return cls("postgresql", _PostgresPool(params, schema))
        msg = (
            f"the event store module {module!r} has no SQL database for views; "
            "use a sqlite:/// or postgresql:// HUB_DATABASE_URL"
        )
        raise ConfigurationError(msg)

    @classmethod
    def from_settings(cls, settings: Settings, schema: str | None = None) -> Database:
        """Open connections of our own to the store named by ``settings``.

        ``schema`` selects a PostgreSQL schema other than ``public`` (the same
        value as the application's ``POSTGRES_SCHEMA``).
        """
        if settings.store == "sqlite":
            assert settings.sqlite_path is not None
            # NOTE: A shared in-memory store opened here and by an application in
            # the same process can fail with "database table is locked" errors.
            # Use for_application() there.
            return cls("sqlite", _OwnSQLite(settings.sqlite_path))
        params = {
            "dbname": settings.postgres["POSTGRES_DBNAME"],
            "host": settings.postgres["POSTGRES_HOST"],
            "port": settings.postgres.get("POSTGRES_PORT", "5432"),
            "user": settings.postgres["POSTGRES_USER"],
            "password": settings.postgres.get("POSTGRES_PASSWORD", ""),
        }
        return cls("postgresql", _PostgresPool(params, schema or "public"))

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Cursor]:
        """Run one transaction: commit when the block ends, roll back when it raises.

        A write transaction on SQLite starts with ``BEGIN IMMEDIATE``, which takes
        the write lock at once. A later write in it therefore cannot fail because
        another process committed since its first read. A read-only transaction
        always rolls back.
        """
        with self._backend.transaction(readonly) as raw:
            yield Cursor(raw, self.dialect)

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema of the views, or None on SQLite."""
        return getattr(self._backend, "schema", None)

    def close(self) -> None:
        self._backend.close()


class _BorrowedSQLite:
    """SQLite transactions on connections borrowed from the library's pool."""

    def __init__(self, datastore: Any) -> None:
        self._datastore = datastore

    @contextmanager
    def transaction(self, readonly: bool) -> Iterator[Any]:
        with self._datastore.get_connection(commit=not readonly) as connection:
            # The library's SQLiteCursor wraps this sqlite3 cursor. Plain tuples
            # replace its sqlite3.Row objects, so both backends return the same rows.
            raw = connection.cursor().sqlite_cursor
            raw.row_factory = None
            if readonly:
                yield from _run_transaction(connection, raw, readonly)
                return
            # View transactions skip the fsync at commit, and the event store's
            # own transactions on this connection keep theirs (see _run_transaction).
            raw.execute("PRAGMA synchronous")
            previous = raw.fetchone()[0]
            raw.execute("PRAGMA synchronous=NORMAL")
            try:
                yield from _run_transaction(connection, raw, readonly)
            finally:
                raw.execute(f"PRAGMA synchronous={int(previous)}")

    def close(self) -> None:
        """Leave the pool open: it belongs to the application."""


class _OwnSQLite:
    """SQLite transactions on one connection per thread, opened by us."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._closed:
                msg = f"the database {self._path} is closed"
                raise ConfigurationError(msg)
            connection = sqlite3.connect(
                self._path, uri=True, isolation_level=None,
                timeout=SQLITE_BUSY_TIMEOUT, check_same_thread=False,
            )
            if "mode=memory" not in self._path and self._path != ":memory:":
                connection.execute("PRAGMA journal_mode=WAL")
            # These connections write view rows only (see _run_transaction).
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def transaction(self, readonly: bool) -> Iterator[Any]:
        connection = self._connection()
        yield from _run_transaction(connection, connection.cursor(), readonly)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for connection in self._connections:
                connection.close()
            self._connections.clear()


def _run_transaction(connection: Any, raw: sqlite3.Cursor, readonly: bool) -> Iterator[sqlite3.Cursor]:
    """Yield ``raw`` inside a transaction, then commit it (or roll back a read-only one or on an error).

    Write transactions run with ``synchronous=NORMAL``: in WAL mode a commit
    then skips its fsync, so a power cut can undo the last view transactions,
    but never tear one. Each undone transaction takes its position with it, so
    the runner applies those pages again and every event still counts once.
    """
    _begin(raw, readonly)
    try:
        yield raw
    except BaseException:
        connection.rollback()
        raise
    if readonly:
        connection.rollback()
    else:
        connection.commit()


def _begin(raw: sqlite3.Cursor, readonly: bool) -> None:
    if readonly:
        raw.execute("BEGIN")
        return
    for attempt in range(1, SQLITE_BEGIN_RETRIES + 1):
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == SQLITE_BEGIN_RETRIES:
                raise
            logger.warning(
                "SQLite write lock busy (%s), retrying BEGIN IMMEDIATE (attempt %d of %d)",
                error, attempt + 1, SQLITE_BEGIN_RETRIES,
            )
            time.sleep(0.1 * attempt)


class _PostgresPool:
    """PostgreSQL transactions from a small psycopg pool whose search_path is the schema."""

    def __init__(self, params: dict[str, Any], schema: str) -> None:
        from psycopg_pool import ConnectionPool

        missing = [name for name in ("dbname", "host", "user") if not params.get(name)]
        if missing:
            msg = f"PostgreSQL setting {missing[0]} is missing; set it in HUB_DATABASE_URL"
            raise ConfigurationError(msg)
        self.schema = schema
        self._pool = ConnectionPool(
            kwargs={**params, "options": f"-c search_path={schema}"},
            min_size=1, max_size=4, open=True, name=f"hub-views-{schema}",
        )

    @contextmanager
    def transaction(self, readonly: bool) -> Iterator[Any]:
        with self._pool.connection() as connection:
            with connection.transaction(force_rollback=readonly):
                yield connection.cursor()

    def close(self) -> None:
        self._pool.close()
