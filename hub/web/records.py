"""Reads that every aggregate shares: state at a version or instant, and paged history."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import marshmallow as ma
from flask import Response

from hub.application import NotFoundError
from hub.events import AGGREGATE_KINDS, aggregate_kind, describe_event
from hub.web.auth import READ_HISTORY, READ_RECORDS
from hub.web.blueprint import ApiBlueprint
from hub.web.errors import ApiError
from hub.web.schemas import EventPageSchema, PageQuerySchema, PointInTimeQuerySchema
from hub.web.services import services
from hub.web.writes import json_response, state_response


def decode_version_cursor(cursor: str | None) -> int:
    """Return the version a history cursor points after; 0 for the first page."""
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        message = f"cursor {cursor!r} is invalid; pass the next_cursor of the previous page"
        raise ApiError(422, "validation_failed", message, {"cursor": [message]})
    return int(cursor)


def read_state(aggregate_class: type, aggregate_id: UUID, query: dict[str, Any], schema: ma.Schema) -> Response:
    """Respond with an aggregate's current state, or its state at ``version`` or ``as_of``."""
    application = services().application
    aggregate: Any
    if "as_of" in query:
        aggregate = application.get_as_of(aggregate_class, aggregate_id, query["as_of"])
    else:
        aggregate = application.get(aggregate_class, aggregate_id, version=query.get("version"))
    return state_response(200, schema, aggregate)


def history_page(aggregate_class: type, aggregate_id: UUID, cursor: str | None, limit: int) -> dict[str, Any]:
    """Return one page of an aggregate's events, oldest first, with global positions."""
    application = services().application
    kind = AGGREGATE_KINDS[aggregate_class]
    after = decode_version_cursor(cursor)

    first = list(application.events.get(aggregate_id, limit=1))
    if not first or aggregate_kind(first[0]) != kind:
        raise NotFoundError(kind, aggregate_id)

    events = list(application.events.get(aggregate_id, gt=after, limit=limit + 1))
    page = events[:limit]
    positions = application.positions(aggregate_id) if page else {}
    items = [describe_event(event, positions.get(event.originator_version)) for event in page]
    next_cursor = str(page[-1].originator_version) if len(events) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def add_read_routes(
    blp: ApiBlueprint,
    aggregate_class: type,
    id_name: str,
    schema: ma.Schema,
    noun: str,
) -> None:
    """Register ``GET /<id>`` (state, past state) and ``GET /<id>/events`` (history)."""

    @blp.route(f"/<uuid:{id_name}>", methods=["GET"], endpoint="read")
    @blp.requires(READ_RECORDS)
    @blp.arguments(PointInTimeQuerySchema, location="query")
    @blp.response(200, schema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(
        summary=f"Read a {noun}",
        description=f"The {noun}'s current state; with version=N its state after the Nth event, "
        "with as_of its state after the last change that had occurred at that time. "
        "The ETag header carries the version, for If-Match on commands.",
    )
    def read(query: dict[str, Any], **path: UUID) -> Response:
        return read_state(aggregate_class, path[id_name], query, schema)

    event_page_schema = EventPageSchema()

    @blp.route(f"/<uuid:{id_name}>/events", methods=["GET"], endpoint="history")
    @blp.requires(READ_HISTORY)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, EventPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(
        summary=f"List a {noun}'s events",
        description="Every recorded event in order, with actor, source, occurred_at, "
        "recorded_at and the position in the global stream.",
    )
    def history(query: dict[str, Any], **path: UUID) -> Response:
        page = history_page(aggregate_class, path[id_name], query.get("cursor"), query["limit"])
        return json_response(200, event_page_schema.dump(page))
