"""``/api/v1/events``: the global event stream in order, for auditors and integrators."""

from __future__ import annotations

from typing import Any

from flask import Response

from hub.events import describe_event
from hub.web.auth import READ_STREAM
from hub.web.blueprint import ApiBlueprint
from hub.web.schemas import StreamPageSchema, StreamQuerySchema
from hub.web.services import services
from hub.web.writes import json_response


def read_stream(after: int, limit: int) -> dict[str, Any]:
    """Return up to ``limit`` events after position ``after``, and the position to read on from."""
    application = services().application
    notifications = application.recorder.select_notifications(
        start=after, limit=limit, inclusive_of_start=False
    )
    to_domain_event = application.mapper.to_domain_event
    items = [describe_event(to_domain_event(notification), notification.id) for notification in notifications]
    next_after = notifications[-1].id if notifications else after
    return {"items": items, "next_after": next_after}


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "events", __name__, url_prefix="/api/v1/events",
        description="The global event stream: every recorded event of every record, in order.",
    )
    page_schema = StreamPageSchema()

    @blp.route("", methods=["GET"], endpoint="stream")
    @blp.requires(READ_STREAM)
    @blp.arguments(StreamQuerySchema, location="query")
    @blp.response(200, StreamPageSchema)
    @blp.doc(
        summary="Read the event stream",
        description="Events after a position, oldest first. Poll with after=next_after to follow "
        "the stream; positions only grow, and no event is skipped.",
    )
    def stream(query: dict[str, Any]) -> Response:
        return json_response(200, page_schema.dump(read_stream(query["after"], query["limit"])))

    return blp
