"""Services the views use: the hub application, the API tables and the projections, per Flask app."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app

from hub.application import HubApplication
from hub.settings import Settings
from hub.web.storage import IdempotencyStore, SqlTables, TokenStore

logger = logging.getLogger(__name__)

EXTENSION_NAME = "hub"


@dataclass
class Services:
    """The objects one Flask app shares across its request threads."""

    settings: Settings
    application: HubApplication
    tables: SqlTables
    tokens: TokenStore
    idempotency: IdempotencyStore
    # The view tables that list and view endpoints read (a projections.db.Database).
    projections: Any
    # Applies new events to the views on demand (catch_up) and reports their lag (status).
    projection_runner: Any
    # The in-process runner thread of the embedded mode, or None when another process runs them.
    background_runner: Any = None

    def catch_up(self) -> int:
        """Apply every recorded event to the views now; return the number of applications."""
        return int(self.projection_runner.catch_up())

    def close(self) -> None:
        if self.background_runner is not None:
            self.background_runner.stop()
            self.background_runner = None
        self.projection_runner.close()
        self.projections.close()
        self.application.close()
        logger.info("Closed the API services")


def services() -> Services:
    """Return the services of the current Flask app."""
    return current_app.extensions[EXTENSION_NAME]
