"""``/api/v1/problems``: root cause analysis of recurring issues."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response

from hub.domain import Context, Problem
from hub.web.auth import WRITE_RECORDS
from hub.web.blueprint import ApiBlueprint
from hub.web.records import add_read_routes
from hub.web.schemas import (
    CorrectiveActionSchema,
    CreateHeadersSchema,
    EvidenceSchema,
    OutcomeSchema,
    ProblemCloseSchema,
    ProblemCreateSchema,
    ProblemSchema,
    RootCauseSchema,
)
from hub.web.services import services
from hub.web.writes import CommandRoute, add_command_routes, method, run_create

PROBLEM_COMMANDS = (
    CommandRoute(
        "evidence", EvidenceSchema, method("add_evidence"), "Add evidence",
        "A note and the tickets that show the problem.",
    ),
    CommandRoute("root-cause", RootCauseSchema, method("identify_root_cause"), "Identify the root cause"),
    CommandRoute(
        "corrective-action", CorrectiveActionSchema, method("implement_corrective_action"),
        "Record the corrective action", "Needs an identified root cause.",
    ),
    CommandRoute(
        "outcomes", OutcomeSchema, method("monitor_outcome"), "Record a monitored outcome",
        "An observation after the corrective action and how often the issue recurred.",
    ),
    CommandRoute("close", ProblemCloseSchema, method("close"), "Close the problem"),
)


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "problems", __name__, url_prefix="/api/v1/problems",
        description="Problems: define, gather evidence, find the root cause, correct, monitor.",
    )
    problem_schema = ProblemSchema()

    @blp.route("", methods=["POST"], endpoint="define")
    @blp.requires(WRITE_RECORDS)
    @blp.arguments(CreateHeadersSchema, location="headers")
    @blp.arguments(ProblemCreateSchema)
    @blp.response(201, ProblemSchema)
    @blp.doc(summary="Define a problem")
    def define(headers: dict[str, Any], body: dict[str, Any]) -> Response:
        application = services().application

        def create(ctx: Context, problem_id: UUID | None) -> Any:
            return application.define_problem(
                ctx, problem_id=problem_id, title=body["title"], description=body.get("description")
            )

        return run_create(
            Problem, create, headers, body, problem_schema, lambda problem_id: f"/api/v1/problems/{problem_id}"
        )

    add_read_routes(blp, Problem, "problem_id", problem_schema, "problem")
    add_command_routes(blp, Problem, "problem_id", problem_schema, PROBLEM_COMMANDS, WRITE_RECORDS)
    return blp
