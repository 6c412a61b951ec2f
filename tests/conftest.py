"""Fixtures shared by the whole suite: event stores on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from hub.application import HubApplication, create_application
from hub.settings import load_settings

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


requires_postgres = pytest.mark.skipif(
    not postgres_answers(),
    reason="PostgreSQL does not answer on 127.0.0.1:5432 (.ci/run starts it; locally run "
    "'pg_ctlcluster --skip-systemctl-redirect 15 main start')",
)


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL.replace("postgresql://", "postgresql://"), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def store_url(kind: str, tmp_path) -> str:
    if kind == "sqlite-file":
        return f"sqlite:///{tmp_path}/hub.sqlite3"
    if kind == "sqlite-memory":
        return "sqlite:///:memory:"
    return POSTGRES_URL


STORE_KINDS = [
    "sqlite-file",
    "sqlite-memory",
    pytest.param("postgresql", marks=[requires_postgres, pytest.mark.postgres]),
]


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path) -> Iterator[dict[str, str]]:
    """Environment settings for one store kind: SQLite file, shared in-memory SQLite, PostgreSQL."""
    env = {"HUB_DATABASE_URL": store_url(request.param, tmp_path)}
    extra: dict[str, str] = {}
    if request.param == "postgresql":
        schema = request.getfixturevalue("postgres_schema")
        extra["POSTGRES_SCHEMA"] = schema
    yield {"environ": env, "extra": extra, "kind": request.param}


@pytest.fixture
def app(store) -> Iterator[HubApplication]:
    """The hub application on each kind of store."""
    application = create_application(load_settings(store["environ"]), **store["extra"])
    yield application
    application.close()


@pytest.fixture
def memory_app() -> Iterator[HubApplication]:
    """The hub application on a private in-memory SQLite store, for domain-level tests."""
    application = create_application(load_settings({"HUB_DATABASE_URL": "sqlite:///:memory:"}))
    yield application
    application.close()
