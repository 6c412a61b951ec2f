"""Helpers and fixtures for the connector tests: settings with a cipher key, connections, payloads.

Test modules import the fixtures they use from here by name. This folder has
no conftest.py, because a second module named conftest would hide the root
one from the test modules that import names from it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from connectors.connection import Connection, create_connection
from hub.application import HubApplication, create_application
from hub.domain import Context
from hub.secrets import generate_key
from hub.settings import Settings, load_settings

FIXTURES = Path(__file__).parent.parent / "fixtures"

ZENDESK_URL = "https://example.zendesk.com"
FRESHDESK_URL = "https://example.freshdesk.com"
SERVICENOW_URL = "https://example.service-now.com"

ZENDESK_CREDENTIALS = {"email": "agent@example.com", "api_token": "zd-secret-token-1"}
FRESHDESK_CREDENTIALS = {"api_key": "fd-secret-key-1"}
SERVICENOW_CREDENTIALS = {"username": "integration", "password": "sn-secret-password-1"}

# Shortly after the recorded Zendesk export (2023-09-18).
NOW = datetime(2023, 9, 18, 16, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """A clock whose sleeps return at once and move its time forward."""

    def __init__(self, now: datetime = NOW) -> None:
        self.current = now
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)


def load_fixture(vendor: str, name: str) -> Any:
    return json.loads((FIXTURES / vendor / name).read_text())


def recorded_zendesk_ticket() -> dict[str, Any]:
    """The first ticket of the recorded cursor export (ticket 28, status new)."""
    interactions = load_fixture("zendesk", "incremental_tickets_cursor_based.json")["interactions"]
    return copy.deepcopy(interactions[0]["response_body"]["tickets"][0])


def zendesk_ticket(ticket_id: int, updated_at: str, **fields: Any) -> dict[str, Any]:
    """The recorded ticket record with another id, update time and fields."""
    record = recorded_zendesk_ticket()
    record.update(id=ticket_id, url=f"{ZENDESK_URL}/api/v2/tickets/{ticket_id}.json", updated_at=updated_at)
    record["generated_timestamp"] = int(datetime.fromisoformat(updated_at.replace("Z", "+00:00")).timestamp())
    record.update(fields)
    return record


def export_page(tickets: list[dict[str, Any]], after_cursor: str, end_of_stream: bool) -> dict[str, Any]:
    """A cursor export page shaped like the recorded ones."""
    return {
        "tickets": tickets,
        "after_url": f"{ZENDESK_URL}/api/v2/incremental/tickets/cursor.json?cursor={after_cursor}",
        "before_url": None,
        "after_cursor": after_cursor,
        "before_cursor": None,
        "end_of_stream": end_of_stream,
    }


def freshdesk_ticket(ticket_id: int, updated_at: str, **fields: Any) -> dict[str, Any]:
    record = copy.deepcopy(load_fixture("freshdesk", "ticket_1.json"))
    record.update(id=ticket_id, updated_at=updated_at)
    record.update(fields)
    return record


def settings_for(url: str = "sqlite:///:memory:", **environ: str) -> Settings:
    return load_settings({"HUB_DATABASE_URL": url, "HUB_CIPHER_KEY": generate_key(), **environ})


@pytest.fixture
def settings() -> Settings:
    """Settings for a private in-memory store, with a fresh cipher key."""
    return settings_for()


@pytest.fixture
def hub_app(settings: Settings) -> Iterator[HubApplication]:
    application = create_application(settings)
    yield application
    application.close()


def add_connection(
    app: HubApplication,
    settings: Settings,
    kind: str = "zendesk",
    *,
    options: dict[str, Any] | None = None,
    base_url: str | None = None,
    credentials: dict[str, str] | None = None,
    schedule: Any = None,
) -> Connection:
    defaults = {
        "zendesk": (ZENDESK_URL, ZENDESK_CREDENTIALS),
        "freshdesk": (FRESHDESK_URL, FRESHDESK_CREDENTIALS),
        "servicenow": (SERVICENOW_URL, SERVICENOW_CREDENTIALS),
    }
    url, default_credentials = defaults[kind]
    return create_connection(
        app, Context(actor_kind="agent", actor_id="admin-1"), kind=kind, base_url=base_url or url,
        credentials=credentials or default_credentials, schedule=schedule, options=options or {"include": []},
        settings=settings,
    )


def ticket_events(app: HubApplication, ticket_id: Any) -> list[dict[str, Any]]:
    from hub.domain import Ticket

    return app.history(Ticket, ticket_id)
