"""``/api/v1/improvements``: PDCA cycles, and the PDCA log view over them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response

from hub.domain import Context, Improvement
from hub.web.auth import READ_VIEWS, WRITE_RECORDS
from hub.web.blueprint import ApiBlueprint
from hub.web.paging import page_of
from hub.web.records import add_read_routes
from hub.web.schemas import (
    CreateHeadersSchema,
    ImprovementActSchema,
    ImprovementCheckSchema,
    ImprovementCreateSchema,
    ImprovementDoSchema,
    ImprovementLogPageSchema,
    ImprovementLogQuerySchema,
    ImprovementSchema,
)
from hub.web.services import services
from hub.web.writes import CommandRoute, add_command_routes, json_response, method, run_create
from projections import queries

IMPROVEMENT_COMMANDS = (
    CommandRoute("do", ImprovementDoSchema, method("do"), "Record the change (do)"),
    CommandRoute(
        "check", ImprovementCheckSchema, method("check_result"), "Record the measured result (check)",
        "The KPI measured over a window after the change, to compare with the baseline.",
    ),
    CommandRoute(
        "act", ImprovementActSchema, method("act"), "Decide (act)",
        "standardized keeps the change, abandoned drops it.",
    ),
)


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "improvements", __name__, url_prefix="/api/v1/improvements",
        description="Improvements: plan-do-check-act cycles measured against a KPI, and the PDCA log.",
    )
    improvement_schema = ImprovementSchema()
    log_page_schema = ImprovementLogPageSchema()

    @blp.route("", methods=["POST"], endpoint="plan")
    @blp.requires(WRITE_RECORDS)
    @blp.arguments(CreateHeadersSchema, location="headers")
    @blp.arguments(ImprovementCreateSchema)
    @blp.response(201, ImprovementSchema)
    @blp.doc(summary="Plan an improvement", description="A KPI gap with its baseline and target (plan).")
    def plan(headers: dict[str, Any], body: dict[str, Any]) -> Response:
        application = services().application

        def create(ctx: Context, improvement_id: UUID | None) -> Any:
            return application.plan_improvement(
                ctx, improvement_id=improvement_id, title=body["title"], kpi=body["kpi"],
                baseline=body["baseline"], target=body["target"], filters=body["filters"],
            )

        return run_create(
            Improvement, create, headers, body, improvement_schema,
            lambda improvement_id: f"/api/v1/improvements/{improvement_id}",
        )

    @blp.route("", methods=["GET"], endpoint="log")
    @blp.requires(READ_VIEWS)
    @blp.arguments(ImprovementLogQuerySchema, location="query")
    @blp.response(200, ImprovementLogPageSchema)
    @blp.doc(
        summary="Read the PDCA log",
        description="Every improvement cycle, oldest plan first, with the KPI measured again from "
        "the views over its check window (measured_from_views), the change from the baseline "
        "and whether the target was met.",
    )
    def log(query: dict[str, Any]) -> Response:
        entries = queries.improvements(services().projections, phase=query.get("phase"), kpi=query.get("kpi"))
        page = page_of(entries, query.get("cursor"), query["limit"])
        return json_response(200, log_page_schema.dump(page))

    add_read_routes(blp, Improvement, "improvement_id", improvement_schema, "improvement")
    add_command_routes(blp, Improvement, "improvement_id", improvement_schema, IMPROVEMENT_COMMANDS, WRITE_RECORDS)
    return blp
