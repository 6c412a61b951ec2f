"""Fixtures shared by the whole suite: event stores on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from hub.application import HubApplication, create_application
from hub.settings import load_settings
from hubtest import POSTGRES_URL, STORE_KINDS, store_url


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


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
