"""Where the pages read from: the API's application and the views' database."""

from __future__ import annotations

from typing import Any

from hub.application import HubApplication
from hub.web.services import services
from projections.db import Database

EXTRA_KEY = "pages.view_database"


def hub_application() -> HubApplication:
    return services().application


def view_database() -> Database:
    """Return the database of the views, the one the API's view endpoints query."""
    found: Any = services().projections
    if isinstance(found, Database):
        return found
    database = getattr(found, "db", None)
    if isinstance(database, Database):
        return database
    extras = services().extras
    if EXTRA_KEY not in extras:
        extras[EXTRA_KEY] = Database.for_application(hub_application())
    database = extras[EXTRA_KEY]
    assert isinstance(database, Database)
    return database
