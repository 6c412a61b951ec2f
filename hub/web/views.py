"""``/api/v1/kpis``, ``/api/v1/sla`` and ``/api/v1/escalations``: the analysts' views.

Views read the projection tables, so they show what the projection
runner has applied so far; ``GET /healthz`` reports how far behind it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from flask import Response

from hub.domain.errors import InvalidValueError
from hub.web.auth import READ_VIEWS
from hub.web.blueprint import ApiBlueprint
from hub.web.paging import page_of
from hub.web.schemas import (
    EscalationPageSchema,
    EscalationQuerySchema,
    KpiPageSchema,
    KpiQuerySchema,
    SlaPageSchema,
    SlaQuerySchema,
)
from hub.web.services import services
from hub.web.writes import json_response
from projections import queries
from projections.escalations import EscalationQueryError
from projections.kpis import DIMENSIONS, KpiQueryError
from projections.sla import sla_rows


# The values inside the escalation and SLA cursors, by position. The views'
# decoders check only the count, and a value of another type would reach SQL.
ESCALATION_CURSOR_TYPES = (str, str, int)
SLA_CURSOR_TYPES = (str, str, str, int)


def check_cursor_values(cursor: str | None, types: tuple[type, ...]) -> None:
    """Reject a cursor whose values have the wrong types; leave malformed ones to the view's decoder."""
    if cursor is None:
        return
    try:
        values = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, binascii.Error):
        return
    if not isinstance(values, list) or len(values) != len(types):
        return
    if not all(type(value) is expected for value, expected in zip(values, types)):
        message = f"cursor {cursor!r} is invalid; pass the next_cursor of the previous page unchanged"
        raise InvalidValueError("cursor", message)


def as_invalid_value(error: ValueError) -> InvalidValueError:
    """Name the argument a view's query error is about; its message starts with that name."""
    message = str(error)
    field = message.split(" ", 1)[0] or "query"
    return InvalidValueError(field, message)


def create_blueprint() -> ApiBlueprint:
    blp = ApiBlueprint(
        "views", __name__, url_prefix="/api/v1",
        description="Views for analysts: KPIs, SLA clocks and escalations.",
    )
    kpi_page_schema = KpiPageSchema()
    sla_page_schema = SlaPageSchema()
    escalation_page_schema = EscalationPageSchema()

    @blp.route("/kpis", methods=["GET"], endpoint="kpis")
    @blp.requires(READ_VIEWS)
    @blp.arguments(KpiQuerySchema, location="query")
    @blp.response(200, KpiPageSchema)
    @blp.doc(
        summary="Compute KPIs",
        description="KPIs over the tickets opened in [since, until) that match the slice filters, "
        "as one row, or one row per value of group_by: first response and resolution times with "
        "their spread, FCR, CSAT, CES, NPS, reopen, repeat-issue, escalation and SLA adherence rates.",
    )
    def kpis(query: dict[str, Any]) -> Response:
        filters = {name: query[name] for name in DIMENSIONS if name in query}
        try:
            rows = queries.kpis(
                services().projections, group_by=query.get("group_by"), since=query.get("since"),
                until=query.get("until"), filters=filters or None,
                fcr_definition=query["fcr_definition"], repeat_window_days=query["repeat_window_days"],
            )
        except KpiQueryError as error:
            raise as_invalid_value(error) from None
        page = page_of(rows, query.get("cursor"), query["limit"])
        return json_response(200, kpi_page_schema.dump(page))

    @blp.route("/sla", methods=["GET"], endpoint="sla")
    @blp.requires(READ_VIEWS)
    @blp.arguments(SlaQuerySchema, location="query")
    @blp.response(200, SlaPageSchema)
    @blp.doc(
        summary="Read SLA clocks",
        description="One row per ticket, SLA target and cycle, as of now, with the least time left first.",
    )
    def sla(query: dict[str, Any]) -> Response:
        check_cursor_values(query.get("cursor"), SLA_CURSOR_TYPES)
        page = sla_rows(
            services().projections, state=query.get("state"), ticket_id=query.get("ticket_id"),
            cursor=query.get("cursor"), limit=query["limit"],
        )
        return json_response(200, sla_page_schema.dump(page))

    @blp.route("/escalations", methods=["GET"], endpoint="escalations")
    @blp.requires(READ_VIEWS)
    @blp.arguments(EscalationQuerySchema, location="query")
    @blp.response(200, EscalationPageSchema)
    @blp.doc(summary="List escalations", description="Escalation episodes, oldest first.")
    def escalations(query: dict[str, Any]) -> Response:
        check_cursor_values(query.get("cursor"), ESCALATION_CURSOR_TYPES)
        try:
            page = queries.escalations(
                services().projections, state=query["state"], owner=query.get("owner"),
                level=query.get("level"), overdue=query.get("overdue"), cursor=query.get("cursor"),
                limit=query["limit"],
            )
        except EscalationQueryError as error:
            raise as_invalid_value(error) from None
        return json_response(200, escalation_page_schema.dump(page))

    return blp
