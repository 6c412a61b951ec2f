"""``/healthz``: whether the event store responds, and how far the projections lag behind it."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import PersistenceError
from flask import Response

from hub.web.blueprint import ApiBlueprint
from hub.web.schemas import HealthSchema
from hub.web.services import services
from hub.web.writes import json_response

logger = logging.getLogger(__name__)


def check_health() -> tuple[int, dict[str, Any]]:
    hub = services()
    try:
        head = hub.application.max_position()
    except PersistenceError as error:
        logger.error("Health check: the event store did not respond: %s", error)
        return 503, {
            "status": "unavailable",
            "store": {"reachable": False, "error": type(error).__name__},
            "projections": {},
        }

    store = {"reachable": True, "kind": hub.settings.store, "position": head}
    try:
        views = hub.projection_runner.status()
    except PersistenceError as error:
        logger.error("Health check: the projection positions could not be read: %s", error)
        return 200, {"status": "degraded", "store": store, "projections": {"error": type(error).__name__}}

    lag = max((view["lag"] for view in views), default=0)
    background = hub.background_runner
    running = background is not None and background.error is None
    failed = background is not None and background.error is not None
    projections = {
        "mode": "in-process" if background is not None else "external",
        "running": running,
        "lag": lag,
        "views": views,
    }
    if failed:
        projections["error"] = type(background.error).__name__
    return 200, {"status": "degraded" if failed else "ok", "store": store, "projections": projections}


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint("health", __name__, description="Liveness and projection lag.")

    @blp.route("/healthz", methods=["GET"], endpoint="healthz")
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The event store does not respond.")
    @blp.doc(
        summary="Check health",
        description="Whether the event store responds and, per view, how many events the projections "
        "have not applied yet (lag). Needs no token.",
        security=[],
    )
    def healthz() -> Response:
        status, body = check_health()
        return json_response(status, body)

    return blp
