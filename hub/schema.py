"""Creating every table the hub needs, once per deployment (``hub db init``)."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def initialize_database(app: Any, *, rebuild_views: bool = False) -> list[str]:
    """Create the view, API, webhook and connector tables; optionally rebuild the views.

    The event store's own tables exist once the application is built with the
    library's default CREATE_TABLE setting. With ``rebuild_views`` (after
    ``hub db copy``) every view is replayed from the first event. Webhook
    dispatch replays them too, to rebuild the subscribed endpoints and the event
    log, but queues no message for them: the copied events were already
    dispatched by the store they came from and must not be sent again.
    """
    from projections.db import Database
    from projections.registry import all_views
    from projections.runner import ProjectionRunner
    from webhooks.outbox import Outbox, WebhookDispatchView
    from webhooks.worker import DispatchRunner

    from hub.web.storage import SqlTables

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

    SqlTables(app).create_tables()
    created.append("api tokens and idempotency keys")

    db = Database.for_application(app)
    try:
        Outbox(app, db).setup()
        dispatcher = DispatchRunner(app, WebhookDispatchView(queue_messages=not rebuild_views), db)
        dispatcher.setup()
        if rebuild_views:
            dispatcher.catch_up()
        created.append("webhook outbox")
    finally:
        db.close()

    logger.info("Database initialized: %s", ", ".join(created))
    return created
