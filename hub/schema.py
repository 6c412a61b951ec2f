"""Creating every table the hub needs, once per deployment (``hub db init``)."""

from __future__ import annotations

import importlib
import logging
from typing import Any

logger = logging.getLogger(__name__)

# Modules with a ``create_tables(app)`` function for tables outside the views;
# each returns the names of what it created.
TABLE_MODULES: tuple[str, ...] = ()


def initialize_database(app: Any, *, rebuild_views: bool = False) -> list[str]:
    """Create the event store, view and auxiliary tables; optionally rebuild the views.

    The event store's tables exist once the application is built with the
    library's default CREATE_TABLE setting, so this creates the rest.
    """
    from projections.registry import all_views
    from projections.runner import ProjectionRunner

    created = ["event store"]
    runner = ProjectionRunner(app, all_views())
    try:
        if rebuild_views:
            runner.rebuild()
        else:
            runner.setup()
        created.extend(view.name for view in runner.views)
    finally:
        runner.close()

    for module_name in TABLE_MODULES:
        created.extend(importlib.import_module(module_name).create_tables(app))
    logger.info("Database initialized: %s", ", ".join(created))
    return created
