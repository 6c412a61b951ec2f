"""The API's own tables beside the event store: API tokens and stored idempotent responses.

Both live in the event store's database (the same SQLite file, or the same
PostgreSQL schema) and use the application's connection pool, so every gunicorn
worker and every restart reads the same tokens and the same stored responses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from eventsourcing.persistence import PersistenceError

from hub.application import HubApplication
from hub.settings import Settings

logger = logging.getLogger(__name__)

ROLES = ("admin", "integration", "agent", "analyst", "auditor")

TOKEN_PREFIX = "hub_"
# 32 random bytes, so a token cannot be guessed and its unsalted SHA-256 is a safe lookup key.
TOKEN_BYTES = 32

# Verified tokens kept in memory per process; the cache starts over when it is full.
MAX_CACHED_TOKENS = 1000

TOKENS_TABLE = "hub_api_tokens"
IDEMPOTENCY_TABLE = "hub_api_idempotency"

CREATE_STATEMENTS = (
    f"CREATE TABLE IF NOT EXISTS {{schema}}{TOKENS_TABLE} ("
    " token_id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " created_at TEXT NOT NULL,"
    " revoked_at TEXT)",
    f"CREATE TABLE IF NOT EXISTS {{schema}}{IDEMPOTENCY_TABLE} ("
    " key_hash TEXT PRIMARY KEY,"
    " fingerprint TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " body TEXT NOT NULL,"
    " headers TEXT NOT NULL,"
    " created_at TEXT NOT NULL)",
)


# Key of the PostgreSQL advisory lock held while a process creates its tables (any fixed bigint).
SETUP_LOCK_KEY = 0x6875625F617069  # "hub_api" in ASCII


@contextmanager
def setup_lock(settings: Settings) -> Iterator[None]:
    """Hold a database-wide lock on PostgreSQL while the caller creates tables.

    gunicorn workers start together, and concurrent DDL on PostgreSQL fails with
    "tuple concurrently updated" or a duplicate pg_type row, even for statements
    with IF NOT EXISTS. On SQLite the file lock already serializes them.
    """
    if settings.store != "postgresql":
        yield
        return
    import psycopg

    postgres = settings.postgres
    with psycopg.connect(
        dbname=postgres["POSTGRES_DBNAME"], host=postgres["POSTGRES_HOST"],
        port=postgres.get("POSTGRES_PORT", "5432"), user=postgres["POSTGRES_USER"],
        password=postgres.get("POSTGRES_PASSWORD", ""), autocommit=True,
    ) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_KEY,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def utc_now_text() -> str:
    return datetime.now(tz=timezone.utc).isoformat()


class SqlTables:
    """Runs plain SQL on the application's datastore, on SQLite or PostgreSQL.

    Statements are written with ``?`` placeholders and ``{schema}`` before table
    names; on PostgreSQL they become ``%s`` and the quoted schema.
    """

    def __init__(self, application: HubApplication) -> None:
        recorder: Any = application.recorder
        self.datastore = recorder.datastore
        self.is_postgres = type(self.datastore).__module__.startswith("eventsourcing.postgres")
        if self.is_postgres:
            quoted = self.datastore.schema.replace('"', '""')
            self.schema_prefix = f'"{quoted}".'
        else:
            self.schema_prefix = ""

    def prepare(self, statement: str) -> str:
        statement = statement.replace("{schema}", self.schema_prefix)
        if self.is_postgres:
            statement = statement.replace("?", "%s")
        return statement

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def fetch(self, statement: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.cursor(commit=False) as cursor:
            cursor.execute(self.prepare(statement), tuple(parameters))
            return [dict(row) for row in cursor.fetchall()]

    def change(self, statement: str, parameters: Sequence[Any] = ()) -> int:
        """Run one writing statement in its own transaction; return the number of rows changed."""
        with self.cursor(commit=True) as cursor:
            cursor.execute(self.prepare(statement), tuple(parameters))
            raw = getattr(cursor, "sqlite_cursor", cursor)
            return int(raw.rowcount)

    def create_tables(self) -> None:
        # Several gunicorn workers may start at once; on PostgreSQL two concurrent
        # CREATE TABLE IF NOT EXISTS can still collide, so a second attempt settles it.
        for attempt in (1, 2):
            try:
                with self.cursor(commit=True) as cursor:
                    for statement in CREATE_STATEMENTS:
                        cursor.execute(self.prepare(statement))
                return
            except PersistenceError:
                if attempt == 2:
                    raise
                logger.info("Creating the API tables collided with another process; retrying")


@dataclass(frozen=True)
class ApiToken:
    """A stored API token, without its secret."""

    token_id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None = None


class TokenStore:
    """API tokens, stored as SHA-256 hashes; the secret is shown once, at creation.

    Verified tokens are cached for ``cache_seconds``, which saves a database
    round trip on most requests. A revocation in another process therefore
    takes effect there within that time; in this process it is immediate.
    """

    def __init__(self, tables: SqlTables, cache_seconds: float = 10.0) -> None:
        self.tables = tables
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[ApiToken, float]] = {}
        self._cache_lock = threading.Lock()

    def create(self, role: str, name: str | None = None) -> tuple[ApiToken, str]:
        """Create a token for ``role``; return it and its secret, which is not stored."""
        if role not in ROLES:
            msg = f"role {role!r} is invalid; use one of {', '.join(ROLES)}"
            raise ValueError(msg)
        token_id = secrets.token_hex(8)
        name = (name or "").strip() or f"{role}-{token_id[:6]}"
        if len(name) > 200:
            msg = f"token name is {len(name)} characters long; the maximum is 200"
            raise ValueError(msg)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        created_at = utc_now_text()
        self.tables.change(
            "INSERT INTO {schema}" + TOKENS_TABLE
            + " (token_id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            (token_id, name, role, hash_token(secret), created_at),
        )
        logger.info("Created API token %s (%s) with role %s", token_id, name, role)
        return ApiToken(token_id, name, role, created_at), secret

    def verify(self, secret: str) -> ApiToken | None:
        """Return the live token with this secret, or None."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        token_hash = hash_token(secret)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(token_hash)
        if cached is not None and cached[1] > now:
            return cached[0]

        rows = self.tables.fetch(
            "SELECT token_id, name, role, created_at, revoked_at FROM {schema}" + TOKENS_TABLE
            + " WHERE token_hash = ?",
            (token_hash,),
        )
        if not rows or rows[0]["revoked_at"] is not None:
            return None
        token = ApiToken(**rows[0])
        with self._cache_lock:
            if len(self._cache) >= MAX_CACHED_TOKENS:
                self._cache.clear()
            self._cache[token_hash] = (token, now + self.cache_seconds)
        return token

    def list(self) -> list[ApiToken]:
        rows = self.tables.fetch(
            "SELECT token_id, name, role, created_at, revoked_at FROM {schema}" + TOKENS_TABLE
            + " ORDER BY created_at, token_id"
        )
        return [ApiToken(**row) for row in rows]

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by id; return False when no live token has that id."""
        changed = self.tables.change(
            "UPDATE {schema}" + TOKENS_TABLE + " SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (utc_now_text(), token_id),
        )
        if changed:
            logger.info("Revoked API token %s", token_id)
            with self._cache_lock:
                self._cache = {key: entry for key, entry in self._cache.items() if entry[0].token_id != token_id}
        return bool(changed)


@dataclass(frozen=True)
class StoredResponse:
    """A response recorded under an Idempotency-Key, replayed for a repeated request."""

    fingerprint: str
    status: int
    body: str
    headers: dict[str, str]


class IdempotencyStore:
    """Responses to requests that carried an Idempotency-Key, by token and key.

    NOTE: records are kept indefinitely; a deployment that issues many keys
    should delete old rows of hub_api_idempotency from time to time.
    """

    def __init__(self, tables: SqlTables) -> None:
        self.tables = tables

    @staticmethod
    def key_hash(scope: str, key: str) -> str:
        return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()

    def find(self, key_hash: str) -> StoredResponse | None:
        rows = self.tables.fetch(
            "SELECT fingerprint, status, body, headers FROM {schema}" + IDEMPOTENCY_TABLE
            + " WHERE key_hash = ?",
            (key_hash,),
        )
        if not rows:
            return None
        row = rows[0]
        return StoredResponse(row["fingerprint"], int(row["status"]), row["body"], json.loads(row["headers"]))

    def store(self, key_hash: str, response: StoredResponse) -> StoredResponse:
        """Store a response unless one is already stored; return the one that is kept."""
        inserted = self.tables.change(
            "INSERT INTO {schema}" + IDEMPOTENCY_TABLE
            + " (key_hash, fingerprint, status, body, headers, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            + " ON CONFLICT (key_hash) DO NOTHING",
            (
                key_hash, response.fingerprint, response.status, response.body,
                json.dumps(response.headers), utc_now_text(),
            ),
        )
        if inserted:
            return response
        existing = self.find(key_hash)
        return existing or response
