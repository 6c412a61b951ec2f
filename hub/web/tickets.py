"""``/api/v1/tickets``: intake, commands, current and past state, history and the ticket list."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response

from hub.domain import Context, Ticket
from hub.domain.errors import InvalidValueError
from hub.web import listing
from hub.web.auth import READ_RECORDS, WRITE_RECORDS
from hub.web.blueprint import ApiBlueprint
from hub.web.records import add_read_routes
from hub.web.schemas import (
    AssignSchema,
    ClarificationSchema,
    ClassifySchema,
    CloseSchema,
    CreateHeadersSchema,
    EffortSchema,
    EscalateSchema,
    EscalationResolveSchema,
    EscalationUpdateSchema,
    IntakeCompletionSchema,
    KnowledgeUseSchema,
    NoteSchema,
    PrioritizeSchema,
    ProblemLinkSchema,
    ReopenSchema,
    ReplySchema,
    ResolveSchema,
    SatisfactionSchema,
    StatusSchema,
    TicketIntakeSchema,
    TicketListQuerySchema,
    TicketPageSchema,
    TicketSchema,
    ValidateSchema,
)
from hub.web.services import services
from hub.web.writes import CommandRoute, add_command_routes, arguments_of, json_response, method, run_create

INTAKE_FIELDS = ("subject", "description", "channel", "requester", "client_account_id", "external")


def assign(body: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    return "assign", {"group": body.get("group"), "agent": body.get("agent")}


def reply(body: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    """Map a reply to its command: a requester's reply, an agent's public reply, or an internal note.

    An agent's reply with ``public`` false becomes the internal note.
    """
    if ctx.actor_kind == "requester":
        if not body["public"]:
            raise InvalidValueError("public", "a requester's reply is always public; drop public or set it to true")
        return "receive_requester_reply", {"body": body["body"]}
    if body["public"]:
        return "reply", {"body": body["body"]}
    return "add_note", {"body": body["body"], "public": False}


def validate_resolution(body: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    if body["confirmed"]:
        return "confirm_resolution", {"note": body.get("note")}
    return "reject_resolution", {"reason": body["reason"]}


def complete_intake(body: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    return "complete_intake", {"fields": arguments_of(body)}


def link_problem(body: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    problem_id = body["problem_id"]
    if problem_id not in services().application.repository:
        raise InvalidValueError("problem_id", f"no problem has the id {problem_id}; define the problem first")
    return "link_to_problem", {"problem_id": problem_id}


TICKET_COMMANDS = (
    CommandRoute(
        "intake", IntakeCompletionSchema, complete_intake, "Complete the intake data",
        "Fill in intake fields that were missing when the ticket was opened.",
    ),
    CommandRoute("classify", ClassifySchema, method("classify"), "Classify the ticket"),
    CommandRoute(
        "prioritize", PrioritizeSchema, method("prioritize"), "Set the priority",
        "critical (service failure), high (revenue impact), medium (functional issue) or low (informational).",
    ),
    CommandRoute(
        "assign", AssignSchema, assign, "Assign to a group and/or agent",
        "The first assignment is recorded as assigned, later ones as reassigned.",
    ),
    CommandRoute(
        "replies", ReplySchema, reply, "Reply to the requester",
        "An agent's public reply; with public false, an internal note. With an actor of kind "
        "requester, the requester's own reply.",
    ),
    CommandRoute(
        "notes", NoteSchema, method("add_note"), "Add a note",
        "An internal note, or with public true a note the requester can see but that was not sent.",
    ),
    CommandRoute(
        "clarifications", ClarificationSchema, method("request_clarification"),
        "Ask the requester for details", "A public message that asks the requester to clarify.",
    ),
    CommandRoute(
        "status", StatusSchema, method("change_status"), "Change the status",
        "new, open, pending (waiting on the requester) or on_hold (waiting on a third party); "
        "resolve and close have their own commands.",
    ),
    CommandRoute(
        "escalations", EscalateSchema, method("escalate"), "Escalate the ticket",
        "Raise the ticket to a level with a reason, an owner and the time of the promised update. "
        "Update an open escalation with POST escalations/update and end it with POST escalations/resolve.",
    ),
    CommandRoute(
        "escalations/update", EscalationUpdateSchema, method("update_escalation"),
        "Update the open escalation", "Record a progress note and optionally a new level, owner or promised time.",
    ),
    CommandRoute(
        "escalations/resolve", EscalationResolveSchema, method("resolve_escalation"),
        "Resolve the open escalation",
    ),
    CommandRoute("resolve", ResolveSchema, method("resolve"), "Resolve the ticket"),
    CommandRoute(
        "validate", ValidateSchema, validate_resolution, "Confirm or reject the resolution",
        "confirmed true confirms the resolution (with an optional note); confirmed false rejects "
        "it with a reason and the ticket is open again.",
    ),
    CommandRoute("close", CloseSchema, method("close"), "Close the ticket"),
    CommandRoute(
        "reopen", ReopenSchema, method("reopen"), "Reopen the ticket",
        "Only a resolved or closed ticket can be reopened.",
    ),
    CommandRoute(
        "satisfaction", SatisfactionSchema, method("rate_satisfaction"), "Record a satisfaction rating",
        'CSAT: a score from 1 to 5 on the 1-5 scale, or "good"/"bad" on the good_bad scale.',
    ),
    CommandRoute(
        "effort", EffortSchema, method("score_effort"), "Record a customer effort score",
        "CES: 1 to 7 on the 1-7 scale (lower is less effort), or 1 to 5 on the 1-5 scale.",
    ),
    CommandRoute("problems", ProblemLinkSchema, link_problem, "Link the ticket to a problem"),
    CommandRoute("knowledge", KnowledgeUseSchema, method("use_knowledge"), "Record a knowledge article used"),
)


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "tickets", __name__, url_prefix="/api/v1/tickets",
        description="Tickets: intake, commands, state at any version or time, and history.",
    )
    ticket_schema = TicketSchema()
    page_schema = TicketPageSchema()

    @blp.route("", methods=["POST"], endpoint="intake")
    @blp.requires(WRITE_RECORDS)
    @blp.arguments(CreateHeadersSchema, location="headers")
    @blp.arguments(TicketIntakeSchema)
    @blp.response(201, TicketSchema)
    @blp.alt_response(200, schema=TicketSchema, description="The ticket of this external record already exists.", success=True)
    @blp.doc(
        summary="Open a ticket",
        description="Record a new request. A ticket from an external record (external.source and "
        "external.id) is recorded once: a repeat returns 200 with the existing ticket.",
    )
    def intake(headers: dict[str, Any], body: dict[str, Any]) -> Response:
        fields = {name: body[name] for name in INTAKE_FIELDS if name in body}
        application = services().application

        def create(ctx: Context, ticket_id: UUID | None) -> Any:
            return application.open_ticket(ctx, ticket_id=ticket_id, **fields)

        return run_create(
            Ticket, create, headers, body, ticket_schema,
            lambda ticket_id: f"/api/v1/tickets/{ticket_id}", external=body.get("external"),
        )

    @blp.route("", methods=["GET"], endpoint="list")
    @blp.requires(READ_RECORDS)
    @blp.arguments(TicketListQuerySchema, location="query")
    @blp.response(200, TicketPageSchema)
    @blp.doc(
        summary="List tickets",
        description="Tickets from the ticket view, most recently updated first, filtered by "
        "status, priority, group, assignee (agent), client (client account id) and updated_since.",
    )
    def list_tickets(query: dict[str, Any]) -> Response:
        filters = {name: query.get(name) for name in listing.FILTER_COLUMNS}
        page = listing.query_tickets(
            services().projections, filters, query.get("updated_since"), query.get("cursor"), query["limit"]
        )
        return json_response(200, page_schema.dump(page))

    add_read_routes(blp, Ticket, "ticket_id", ticket_schema, "ticket")
    add_command_routes(blp, Ticket, "ticket_id", ticket_schema, TICKET_COMMANDS, WRITE_RECORDS)
    return blp
