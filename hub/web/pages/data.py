"""Data sources of the pages: the API's application and the views' database."""

from __future__ import annotations

from hub.application import HubApplication
from hub.web.services import services
from projections.db import Database


def hub_application() -> HubApplication:
    return services().application


def view_database() -> Database:
    """Return the database of the views, the one the API's view endpoints query."""
    database = services().projections
    if not isinstance(database, Database):
        msg = f"the app's projections are a {type(database).__name__}, not a projections.db.Database"
        raise TypeError(msg)
    return database
