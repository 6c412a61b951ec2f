"""``/api/v1/sla-policies``: versioned SLA policies."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from flask import Response

from hub.domain import Context, SlaPolicy
from hub.web.auth import MANAGE_POLICIES, READ_RECORDS
from hub.web.blueprint import ApiBlueprint
from hub.web.errors import ApiError
from hub.web.records import add_read_routes
from hub.web.schemas import (
    CreateHeadersSchema,
    PageQuerySchema,
    SlaPolicyCreateSchema,
    SlaPolicyPageSchema,
    SlaPolicySchema,
    SlaPolicyTermsSchema,
)
from hub.web.services import services
from hub.web.writes import CommandRoute, add_command_routes, arguments_of, json_response, run_create

TERMS = ("name", "targets", "calendar", "pause_statuses", "public_notes_count_as_response", "at_risk_ratio")

DEFINED_TOPIC = get_topic(SlaPolicy.Defined)


def revise(body: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    terms = arguments_of(body)
    if not terms:
        message = f"a revision needs at least one of {', '.join(TERMS)}"
        raise ApiError(422, "validation_failed", message, {"body": [message]})
    return "revise", terms


POLICY_COMMANDS = (
    CommandRoute(
        "revisions", SlaPolicyTermsSchema, revise, "Revise the policy",
        "Terms that are sent replace the current ones; the others are kept. Earlier revisions stay "
        "in the history, so measurements remain auditable.",
    ),
)


def decode_position_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        message = f"cursor {cursor!r} is invalid; pass the next_cursor of the previous page"
        raise ApiError(422, "validation_failed", message, {"cursor": [message]})
    return int(cursor)


def list_policies(cursor: str | None, limit: int) -> dict[str, Any]:
    """Return a page of policies in the order they were defined, from the event stream."""
    application = services().application
    after = decode_position_cursor(cursor)
    # NOTE: on SQLite this filter scans the events table, because the topic column
    # has no index there. Policies are few, but the table grows with every event.
    notifications = application.recorder.select_notifications(
        start=after, limit=limit + 1, topics=[DEFINED_TOPIC], inclusive_of_start=False
    )
    page = notifications[:limit]
    items = [application.get(SlaPolicy, UUID(str(notification.originator_id))).state() for notification in page]
    next_cursor = str(page[-1].id) if len(notifications) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "sla-policies", __name__, url_prefix="/api/v1/sla-policies",
        description="SLA policies: targets per priority, a business calendar and pause rules, revised over time.",
    )
    policy_schema = SlaPolicySchema()
    page_schema = SlaPolicyPageSchema()

    @blp.route("", methods=["POST"], endpoint="define")
    @blp.requires(MANAGE_POLICIES)
    @blp.arguments(CreateHeadersSchema, location="headers")
    @blp.arguments(SlaPolicyCreateSchema)
    @blp.response(201, SlaPolicySchema)
    @blp.doc(summary="Define an SLA policy", description="Needs an admin token.")
    def define(headers: dict[str, Any], body: dict[str, Any]) -> Response:
        application = services().application
        terms = {name: body[name] for name in TERMS if name in body}

        def create(ctx: Context, policy_id: UUID | None) -> Any:
            return application.define_sla_policy(ctx, policy_id=policy_id, **terms)

        return run_create(
            SlaPolicy, create, headers, body, policy_schema, lambda policy_id: f"/api/v1/sla-policies/{policy_id}"
        )

    @blp.route("", methods=["GET"], endpoint="list")
    @blp.requires(READ_RECORDS)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, SlaPolicyPageSchema)
    @blp.doc(summary="List SLA policies", description="In the order they were defined, each in its latest revision.")
    def list_all(query: dict[str, Any]) -> Response:
        return json_response(200, page_schema.dump(list_policies(query.get("cursor"), query["limit"])))

    add_read_routes(blp, SlaPolicy, "policy_id", policy_schema, "SLA policy")
    add_command_routes(blp, SlaPolicy, "policy_id", policy_schema, POLICY_COMMANDS, MANAGE_POLICIES)
    return blp
