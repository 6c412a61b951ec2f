"""Fixtures for the HTTP API: an app on a temporary SQLite file (or a PostgreSQL schema) and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.web import build_services, create_app
from hub.web.services import EXTENSION_NAME, Services
from hub.web.storage import ROLES
from hubtest import POSTGRES_URL, requires_postgres

TOKEN_NAMES = {role: f"{role}-bot" for role in ROLES}


def build_app(database_url: str, persistence_env: dict[str, str] | None = None) -> Flask:
    return create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "PERSISTENCE_ENV": persistence_env or {},
        "RUN_PROJECTIONS": False,
    })


def hub_of(app: Flask) -> Services:
    return app.extensions[EXTENSION_NAME]


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/hub.sqlite3"


@pytest.fixture(scope="session")
def shared_app(tmp_path_factory) -> Iterator[Flask]:
    """One API application for the session; each test gives it a store of its own."""
    app = build_app(f"sqlite:///{tmp_path_factory.mktemp('shared')}/hub.sqlite3")
    yield app
    hub_of(app).close()


@pytest.fixture
def api_app(shared_app, database_url) -> Iterator[Flask]:
    """The API on a fresh SQLite file, with the projections caught up only on request.

    Building the routes and the OpenAPI document takes most of create_app's
    time, so tests share one app and swap in services on a new store.
    """
    original = shared_app.extensions[EXTENSION_NAME]
    hub = build_services({**shared_app.config, "DATABASE_URL": database_url})
    shared_app.extensions[EXTENSION_NAME] = hub
    yield shared_app
    hub.close()
    shared_app.extensions[EXTENSION_NAME] = original


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[requires_postgres, pytest.mark.postgres])])
def any_store_app(request, tmp_path) -> Iterator[Flask]:
    """The API on a SQLite file and on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        app = build_app(f"sqlite:///{tmp_path}/hub.sqlite3")
    else:
        schema = request.getfixturevalue("postgres_schema")
        app = build_app(POSTGRES_URL, {"POSTGRES_SCHEMA": schema})
    yield app
    hub_of(app).close()


@pytest.fixture
def client(api_app) -> FlaskClient:
    return api_app.test_client()


class Tokens(dict):
    """Token secrets by role, each created on first use."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app

    def __missing__(self, role: str) -> str:
        secret = hub_of(self.app).tokens.create(role, TOKEN_NAMES[role])[1]
        self[role] = secret
        return secret


@pytest.fixture
def tokens(api_app) -> Tokens:
    """One token per role, by role."""
    return Tokens(api_app)


def bearer(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **extra}


@pytest.fixture
def agent(tokens) -> dict[str, str]:
    return bearer(tokens["agent"])


@pytest.fixture
def admin(tokens) -> dict[str, str]:
    return bearer(tokens["admin"])


def open_ticket(client: FlaskClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"subject": "Invoices fail to export", "channel": "email", **fields}
    response = client.post("/api/v1/tickets", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def ticket(client, agent) -> dict[str, Any]:
    return open_ticket(client, agent, occurred_at="2024-03-01T09:00:00+00:00")
