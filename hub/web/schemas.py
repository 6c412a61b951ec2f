"""Request and response schemas of the API; the OpenAPI document is generated from them.

Request schemas reject unknown fields. They check shapes and vocabularies at
the edge; the aggregates still enforce every business rule, and their
InvalidValueError becomes a 422 naming the field. Body fields take JSON types
as they are (``JsonBoolean``, ``JsonInteger``, ``JsonNumber``), while
query-string fields, which arrive as text, are converted.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from hub.domain.base import ACTOR_KINDS
from hub.domain.vocabulary import (
    CES_SCALES,
    CHANNELS,
    CSAT_SCALES,
    ESCALATION_LEVELS,
    IMPROVEMENT_DECISIONS,
    OPEN_STATUSES,
    PRIORITIES,
    SETTABLE_STATUSES,
    SLA_TARGETS,
    STATUSES,
)
from hub.web.fields import AnyJson, JsonBoolean, JsonInteger, JsonNumber, SatisfactionScore, Timestamp
from projections.kpis import DIMENSIONS as KPI_DIMENSIONS
from projections.kpis import FCR_DEFINITIONS, FILTER_CHOICES, KpiQueryError, check_filter_value
from projections.sla_engine import STATES as SLA_STATES

SHORT_TEXT = 200
TEXT = 10_000
LONG_TEXT = 100_000
MAX_PAGE_SIZE = 500
# Versions and stream positions are 64-bit integers in both stores.
MAX_POSITION = 2**63 - 1
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Schema(ma.Schema):
    """Base of the API's schemas.

    flask-smorest deep-copies each view's documentation, schema instances
    included, once per decorator. These instances never change after they are
    built, so copies share them, which makes building the app several times faster.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> Schema:
        return self


def short_text(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=SHORT_TEXT), **kwargs)


def text(max_length: int = TEXT, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


def optional_text(max_length: int = TEXT, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(max=max_length), allow_none=True, **kwargs)


def choice(choices: tuple[Any, ...], **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


# Request building blocks.


class ActorSchema(Schema):
    kind = choice(ACTOR_KINDS, required=True)
    id = short_text(required=True)


class ExternalRefSchema(Schema):
    source = short_text(required=True, metadata={"description": "The other tool, such as zendesk."})
    id = short_text(required=True, metadata={"description": "The record's id in that tool."})


class RequesterSchema(Schema):
    id = short_text(required=True)
    name = optional_text(500)
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))


class WriteSchema(Schema):
    """Fields every write accepts: when it happened, who did it, and its id at the source."""

    occurred_at = Timestamp(
        metadata={"description": "When it happened at the source; defaults to the time of the request."}
    )
    actor = fields.Nested(
        ActorSchema,
        metadata={"description": "Who acted; defaults to the API token's name."},
    )
    external_event_id = short_text(
        metadata={"description": "The event's id at the source; a repeated id records nothing."}
    )


def idempotency_key_field() -> fields.String:
    return fields.String(
        data_key="Idempotency-Key",
        validate=[validate.Length(min=1, max=255), validate.Regexp(r"^[\x21-\x7e]+$")],
        metadata={
            "description": "Repeating a request with the same key and body returns the original "
            "response without recording anything; the same key with another body is rejected "
            "with 422. Only successful responses are stored: after an error nothing was "
            "recorded, so a retry with the same key runs again. Keys are scoped to the API token."
        },
    )


class CreateHeadersSchema(Schema):
    """Headers every create accepts."""

    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = idempotency_key_field()


class CommandHeadersSchema(CreateHeadersSchema):
    """Headers every command accepts."""

    if_match = fields.String(
        data_key="If-Match",
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": 'Run the command only if the record is at this version (its ETag, such as "3"); '
            "412 otherwise."
        },
    )


class PageQuerySchema(Schema):
    cursor = fields.String(
        validate=validate.Length(min=1, max=500),
        metadata={"description": "The next_cursor of the previous page."},
    )
    limit = fields.Integer(
        load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Items per page, 1 to {MAX_PAGE_SIZE}."},
    )


class PointInTimeQuerySchema(Schema):
    version = fields.Integer(
        validate=validate.Range(min=1, max=MAX_POSITION),
        metadata={"description": "Return the state after this version."},
    )
    as_of = Timestamp(
        metadata={"description": "Return the state after the last change that had occurred at this time."}
    )

    @ma.validates_schema
    def check_one_point(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "version" in data and "as_of" in data:
            message = "Pass either version or as_of, not both."
            raise ma.ValidationError({"version": [message], "as_of": [message]})


# Tickets: intake and commands.


class TicketIntakeSchema(WriteSchema):
    subject = text(1000, required=True)
    description = optional_text(LONG_TEXT)
    channel = choice(CHANNELS, load_default="api")
    requester = fields.Nested(RequesterSchema, allow_none=True)
    client_account_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=SHORT_TEXT))
    external = fields.Nested(
        ExternalRefSchema, allow_none=True,
        metadata={"description": "The record in another tool; intake of the same record is recorded once."},
    )


class IntakeCompletionSchema(WriteSchema):
    subject = text(1000)
    description = text(LONG_TEXT)
    requester = fields.Nested(RequesterSchema)
    client_account_id = short_text()

    @ma.validates_schema
    def check_not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not set(data) & {"subject", "description", "requester", "client_account_id"}:
            raise ma.ValidationError("Send at least one of subject, description, requester, client_account_id.")


class ClassifySchema(WriteSchema):
    category = short_text(required=True)
    subcategory = optional_text(SHORT_TEXT)
    symptom = optional_text(1000)


class PrioritizeSchema(WriteSchema):
    priority = choice(PRIORITIES, required=True)
    criterion = optional_text(500, metadata={"description": "Defaults to the priority's business criterion."})
    impact = optional_text(SHORT_TEXT)
    urgency = optional_text(SHORT_TEXT)


class AssignSchema(WriteSchema):
    group = fields.String(allow_none=True, validate=validate.Length(min=1, max=SHORT_TEXT))
    agent = fields.String(allow_none=True, validate=validate.Length(min=1, max=SHORT_TEXT))

    @ma.validates_schema
    def check_someone(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("group") and not data.get("agent"):
            raise ma.ValidationError({"group": ["Send a group, an agent or both."]})


class ReplySchema(WriteSchema):
    body = text(LONG_TEXT, required=True)
    public = JsonBoolean(
        load_default=True,
        metadata={"description": "false records an internal note instead of a public reply."},
    )


class NoteSchema(WriteSchema):
    body = text(LONG_TEXT, required=True)
    public = JsonBoolean(
        load_default=False,
        metadata={"description": "true records a note the requester can see but that was not sent."},
    )


class ClarificationSchema(WriteSchema):
    body = text(LONG_TEXT, required=True)


class StatusSchema(WriteSchema):
    status = choice(
        SETTABLE_STATUSES, required=True,
        metadata={"description": "resolved and closed are set by the resolve and close commands."},
    )


class EscalateSchema(WriteSchema):
    level = JsonInteger(required=True, validate=validate.OneOf(ESCALATION_LEVELS))
    reason = text(2000, required=True)
    owner = short_text(required=True)
    promised_by = Timestamp(required=True, metadata={"description": "When the next update is promised."})


class EscalationUpdateSchema(WriteSchema):
    note = text(TEXT, required=True)
    level = JsonInteger(validate=validate.OneOf(ESCALATION_LEVELS))
    owner = short_text()
    promised_by = Timestamp()


class EscalationResolveSchema(WriteSchema):
    note = optional_text(TEXT)


class ResolveSchema(WriteSchema):
    resolution_code = optional_text(SHORT_TEXT)
    knowledge_article_id = optional_text(SHORT_TEXT)
    sop = optional_text(SHORT_TEXT, metadata={"description": "The standard workflow that was followed."})
    note = optional_text(TEXT)


class ValidateSchema(WriteSchema):
    confirmed = JsonBoolean(
        required=True, metadata={"description": "true confirms the resolution, false rejects it and reopens work."}
    )
    note = optional_text(TEXT, metadata={"description": "Note for a confirmation."})
    reason = optional_text(TEXT, metadata={"description": "Why the resolution is rejected; required when confirmed is false."})

    @ma.validates_schema
    def check_reason(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("confirmed") is False and not (data.get("reason") or "").strip():
            raise ma.ValidationError({"reason": ["A rejection needs a reason."]})


class CloseSchema(WriteSchema):
    note = optional_text(TEXT)


class ReopenSchema(WriteSchema):
    reason = optional_text(TEXT)


class SatisfactionSchema(WriteSchema):
    score = SatisfactionScore(required=True)
    scale = choice(tuple(CSAT_SCALES), load_default="1-5")
    comment = optional_text(TEXT)


class EffortSchema(WriteSchema):
    score = JsonInteger(required=True, validate=validate.Range(min=1, max=7))
    scale = choice(tuple(CES_SCALES), load_default="1-7")


class ProblemLinkSchema(WriteSchema):
    problem_id = fields.UUID(required=True)


class KnowledgeUseSchema(WriteSchema):
    article_id = short_text(required=True)


# Tickets: responses.


class ActorOutSchema(Schema):
    kind = fields.String(required=True)
    id = fields.String(required=True)


class SourceOutSchema(Schema):
    name = fields.String(required=True)
    external_id = fields.String(allow_none=True)
    external_event_id = fields.String(allow_none=True)
    recorded_by = fields.String(
        metadata={"description": "The API token (by name) that recorded the change, when one did."}
    )


class EscalationOutSchema(Schema):
    level = fields.Integer(required=True)
    reason = fields.String(required=True)
    owner = fields.String(required=True)
    promised_by = Timestamp(allow_none=True)
    escalated_at = Timestamp(required=True)
    last_update_at = Timestamp(allow_none=True)


class ResolutionOutSchema(Schema):
    resolution_code = fields.String(allow_none=True)
    knowledge_article_id = fields.String(allow_none=True)
    sop = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class ScoreOutSchema(Schema):
    score = SatisfactionScore(required=True)
    scale = fields.String(required=True)


class RequesterOutSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)


class ExternalRefOutSchema(Schema):
    source = fields.String(required=True)
    id = fields.String(required=True)


class TicketSchema(Schema):
    """A ticket's state at one version."""

    id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    channel = fields.String(required=True)
    subject = fields.String(required=True)
    description = fields.String(allow_none=True)
    requester = fields.Nested(RequesterOutSchema, allow_none=True)
    client_account_id = fields.String(allow_none=True)
    external = fields.Nested(ExternalRefOutSchema, allow_none=True)
    missing_fields = fields.List(fields.String(), required=True)
    category = fields.String(allow_none=True)
    subcategory = fields.String(allow_none=True)
    symptom = fields.String(allow_none=True)
    priority = fields.String(allow_none=True)
    priority_criterion = fields.String(allow_none=True)
    impact = fields.String(allow_none=True)
    urgency = fields.String(allow_none=True)
    group = fields.String(allow_none=True)
    agent = fields.String(allow_none=True)
    reassignment_count = fields.Integer(required=True)
    public_reply_count = fields.Integer(required=True)
    awaiting_agent_reply = fields.Boolean(required=True)
    escalation = fields.Nested(EscalationOutSchema, allow_none=True)
    escalation_count = fields.Integer(required=True)
    resolution = fields.Nested(ResolutionOutSchema, allow_none=True)
    validation = fields.String(allow_none=True)
    opened_at = Timestamp(required=True)
    first_resolved_at = Timestamp(allow_none=True)
    resolved_at = Timestamp(allow_none=True)
    closed_at = Timestamp(allow_none=True)
    reopen_count = fields.Integer(required=True)
    satisfaction = fields.Nested(ScoreOutSchema, allow_none=True)
    effort = fields.Nested(ScoreOutSchema, allow_none=True)
    problem_ids = fields.List(fields.String(), required=True)
    knowledge_article_ids = fields.List(fields.String(), required=True)
    facts = fields.Dict(keys=fields.String(), values=AnyJson(), required=True)
    updated_at = Timestamp(allow_none=True)
    recorded_at = Timestamp(allow_none=True, metadata={"description": "When this version was recorded."})


class TicketListQuerySchema(PageQuerySchema):
    status = choice(STATUSES)
    priority = choice(PRIORITIES)
    group = short_text()
    assignee = short_text(metadata={"description": "The assigned agent."})
    client = short_text(metadata={"description": "The client account id."})
    updated_since = Timestamp(metadata={"description": "Only tickets whose latest change occurred at or after this time."})


class TicketSummarySchema(Schema):
    """A ticket as the list shows it; read the ticket for its full state."""

    id = fields.UUID(required=True)
    subject = fields.String(required=True)
    status = fields.String(required=True)
    priority = fields.String(allow_none=True)
    channel = fields.String(required=True)
    group = fields.String(allow_none=True)
    agent = fields.String(allow_none=True)
    client_account_id = fields.String(allow_none=True)
    opened_at = Timestamp(required=True)
    updated_at = Timestamp(required=True, metadata={"description": "When the latest change occurred."})
    version = fields.Integer(required=True)


class TicketPageSchema(Schema):
    items = fields.List(fields.Nested(TicketSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class EventSchema(Schema):
    """One recorded event: what happened, who did it, when, from where, and where it sits."""

    aggregate_id = fields.UUID(required=True)
    aggregate_kind = fields.String(required=True)
    version = fields.Integer(required=True)
    type = fields.String(required=True, metadata={"example": "ticket.escalated"})
    occurred_at = Timestamp(required=True, metadata={"description": "When it happened at the source."})
    recorded_at = Timestamp(required=True, metadata={"description": "When the hub recorded it."})
    actor = fields.Nested(ActorOutSchema, required=True)
    source = fields.Nested(SourceOutSchema, required=True)
    position = fields.Integer(allow_none=True, metadata={"description": "Position in the global event stream."})
    data = fields.Dict(keys=fields.String(), values=AnyJson(), required=True)


class EventPageSchema(Schema):
    items = fields.List(fields.Nested(EventSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class StreamQuerySchema(Schema):
    after = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=MAX_POSITION),
        metadata={"description": "Return events after this position; 0 starts at the beginning."},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class StreamPageSchema(Schema):
    items = fields.List(fields.Nested(EventSchema), required=True)
    next_after = fields.Integer(
        required=True,
        metadata={"description": "Pass as after to read on; equals after when no new events were found."},
    )


# Client accounts.


class ClientAccountCreateSchema(WriteSchema):
    organization = text(500, required=True)
    external = fields.Nested(ExternalRefSchema, allow_none=True)


class RenameSchema(WriteSchema):
    organization = text(500, required=True)


class ContactSchema(WriteSchema):
    id = short_text(required=True)
    name = optional_text(500)
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    phone = optional_text(100)


class NpsSchema(WriteSchema):
    score = JsonInteger(required=True, validate=validate.Range(min=0, max=10))
    contact_id = optional_text(SHORT_TEXT)
    comment = optional_text(TEXT)


class ContactOutSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class NpsResponseOutSchema(Schema):
    score = fields.Integer(required=True)
    contact_id = fields.String(allow_none=True)
    at = Timestamp(required=True)


class ClientAccountSchema(Schema):
    id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    organization = fields.String(required=True)
    external = fields.Nested(ExternalRefOutSchema, allow_none=True)
    contacts = fields.List(fields.Nested(ContactOutSchema), required=True)
    nps_responses = fields.List(fields.Nested(NpsResponseOutSchema), required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


# Problems.


class ProblemCreateSchema(WriteSchema):
    title = text(500, required=True)
    description = optional_text(TEXT)


class EvidenceSchema(WriteSchema):
    note = text(TEXT, required=True)
    ticket_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=1000))


class RootCauseSchema(WriteSchema):
    root_cause = text(TEXT, required=True)


class CorrectiveActionSchema(WriteSchema):
    action = text(TEXT, required=True)


class OutcomeSchema(WriteSchema):
    observation = text(TEXT, required=True)
    recurrences = JsonInteger(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class ProblemCloseSchema(WriteSchema):
    note = optional_text(TEXT)


class EvidenceOutSchema(Schema):
    note = fields.String(required=True)
    ticket_ids = fields.List(fields.String(), required=True)


class OutcomeOutSchema(Schema):
    observation = fields.String(required=True)
    recurrences = fields.Integer(required=True)


class ProblemSchema(Schema):
    id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    stage = fields.String(required=True)
    evidence = fields.List(fields.Nested(EvidenceOutSchema), required=True)
    ticket_ids = fields.List(fields.String(), required=True)
    root_cause = fields.String(allow_none=True)
    corrective_action = fields.String(allow_none=True)
    outcomes = fields.List(fields.Nested(OutcomeOutSchema), required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


# Improvements (PDCA).


class ImprovementFiltersSchema(Schema):
    """The slice of tickets an improvement's KPI is measured on."""

    priority = choice(PRIORITIES)
    channel = choice(CHANNELS)
    category = short_text()
    group = short_text()
    agent = short_text()
    client = short_text()


class ImprovementCreateSchema(WriteSchema):
    title = text(500, required=True)
    kpi = short_text(required=True, metadata={"description": "The KPI the change should move, such as frt_p50."})
    baseline = JsonNumber(required=True)
    target = JsonNumber(required=True)
    filters = fields.Nested(ImprovementFiltersSchema, load_default=dict)


class ImprovementDoSchema(WriteSchema):
    change = text(TEXT, required=True)


class ImprovementCheckSchema(WriteSchema):
    measured = JsonNumber(required=True)
    window_start = Timestamp(required=True)
    window_end = Timestamp(required=True)


class ImprovementActSchema(WriteSchema):
    decision = choice(IMPROVEMENT_DECISIONS, required=True)
    note = optional_text(TEXT)


class ImprovementCheckOutSchema(Schema):
    measured = fields.Float(required=True)
    window_start = Timestamp(required=True)
    window_end = Timestamp(required=True)


class ImprovementSchema(Schema):
    id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    kpi = fields.String(required=True)
    baseline = fields.Float(required=True)
    target = fields.Float(required=True)
    filters = fields.Dict(keys=fields.String(), values=AnyJson(), required=True)
    phase = fields.String(required=True)
    change = fields.String(allow_none=True)
    done_at = Timestamp(allow_none=True)
    check = fields.Nested(ImprovementCheckOutSchema, allow_none=True)
    decision = fields.String(allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


# Knowledge articles.


class ArticleCreateSchema(WriteSchema):
    title = text(500, required=True)
    body = text(200_000, required=True)
    tags = fields.List(short_text(), load_default=list, validate=validate.Length(max=100))


class ArticleRevisionSchema(WriteSchema):
    title = text(500)
    body = text(200_000)

    @ma.validates_schema
    def check_not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "title" not in data and "body" not in data:
            raise ma.ValidationError({"body": ["Send a new title, a new body or both."]})


class ArticleRetireSchema(WriteSchema):
    reason = optional_text(TEXT)


class ArticleSchema(Schema):
    id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)
    revision = fields.Integer(required=True)
    retired = fields.Boolean(required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


# SLA policies.


class TargetMinutesSchema(Schema):
    first_response = JsonNumber(allow_none=True, validate=validate.Range(min=0, min_inclusive=False))
    next_reply = JsonNumber(allow_none=True, validate=validate.Range(min=0, min_inclusive=False))
    resolution = JsonNumber(allow_none=True, validate=validate.Range(min=0, min_inclusive=False))


class CalendarSchema(Schema):
    timezone = short_text(required=True, metadata={"example": "Europe/Berlin"})
    hours = fields.Dict(
        keys=choice(WEEKDAYS),
        values=fields.List(
            fields.List(
                fields.String(validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")),
                validate=validate.Length(equal=2),
            ),
            validate=validate.Length(max=24),
        ),
        required=True,
        metadata={"description": 'Business hours per weekday, such as {"mon": [["08:00", "18:00"]]}.'},
    )
    holidays = fields.List(fields.Date(), load_default=list, validate=validate.Length(max=1000))

    @ma.post_load
    def holidays_as_text(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # The domain stores holidays as YYYY-MM-DD strings.
        data["holidays"] = [day.isoformat() for day in data.get("holidays", [])]
        return data


class SlaPolicyTermsSchema(WriteSchema):
    name = short_text()
    targets = fields.Dict(
        keys=choice(PRIORITIES),
        values=fields.Nested(TargetMinutesSchema),
        metadata={"description": 'Minutes per priority and target, such as {"high": {"first_response": 60}}.'},
    )
    calendar = fields.Nested(CalendarSchema, allow_none=True, metadata={"description": "null means 24x7."})
    pause_statuses = fields.Dict(
        keys=choice(SLA_TARGETS),
        values=fields.List(choice(OPEN_STATUSES), validate=validate.Length(max=len(OPEN_STATUSES))),
    )
    public_notes_count_as_response = JsonBoolean()
    at_risk_ratio = JsonNumber(validate=validate.Range(min=0, max=1, min_inclusive=False, max_inclusive=False))


class SlaPolicyCreateSchema(SlaPolicyTermsSchema):
    name = short_text(required=True)
    targets = fields.Dict(
        keys=choice(PRIORITIES),
        values=fields.Nested(TargetMinutesSchema),
        required=True,
        metadata={"description": 'Minutes per priority and target, such as {"high": {"first_response": 60}}.'},
    )


class CalendarOutSchema(Schema):
    timezone = fields.String(required=True)
    hours = fields.Dict(keys=fields.String(), values=fields.List(fields.List(fields.String())), required=True)
    holidays = fields.List(fields.String(), required=True)


class SlaPolicySchema(Schema):
    id = fields.UUID(required=True)
    version = fields.Integer(required=True)
    revision = fields.Integer(required=True)
    name = fields.String(required=True)
    targets = fields.Dict(
        keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True)),
        required=True,
    )
    calendar = fields.Nested(CalendarOutSchema, allow_none=True)
    pause_statuses = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
    public_notes_count_as_response = fields.Boolean(required=True)
    at_risk_ratio = fields.Float(required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class SlaPolicyPageSchema(Schema):
    items = fields.List(fields.Nested(SlaPolicySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


# Health.


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("ok", "degraded", "unavailable")))
    store = fields.Dict(keys=fields.String(), values=AnyJson(), required=True)
    projections = fields.Dict(keys=fields.String(), values=AnyJson(), required=True)


# Views.


def view_row(description: str) -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=AnyJson(), metadata={"description": description})


def kpi_filter(name: str, **kwargs: Any) -> fields.String:
    """Build a KPI filter field checked by the views' own rule, so the API and ``hub kpi`` reject the same values."""

    def check(value: str) -> None:
        try:
            check_filter_value(name, value)
        except KpiQueryError as error:
            raise ma.ValidationError(str(error)) from None

    metadata = kwargs.pop("metadata", {})
    if name in FILTER_CHOICES:
        metadata = {"enum": list(FILTER_CHOICES[name]), **metadata}
    return fields.String(validate=check, metadata=metadata, **kwargs)


class KpiQuerySchema(PageQuerySchema):
    group_by = choice(tuple(KPI_DIMENSIONS), metadata={"description": "Group the tickets by this dimension or period."})
    priority = kpi_filter("priority")
    channel = kpi_filter("channel")
    category = short_text()
    group = short_text()
    agent = short_text()
    client = short_text(metadata={"description": "The client account id."})
    day = kpi_filter("day", metadata={"description": "A UTC day, YYYY-MM-DD."})
    week = kpi_filter("week", metadata={"description": "A week by the date of its Monday, YYYY-MM-DD."})
    month = kpi_filter("month", metadata={"description": "A UTC month, YYYY-MM."})
    since = Timestamp(metadata={"description": "Tickets opened at or after this time."})
    until = Timestamp(metadata={"description": "Tickets opened before this time; must be after since."})
    fcr_definition = choice(tuple(FCR_DEFINITIONS), load_default="default")
    repeat_window_days = fields.Float(load_default=30.0, validate=validate.Range(min=0, max=3650, min_inclusive=False))

    @ma.validates_schema
    def check_until_after_since(self, data: dict[str, Any], **kwargs: Any) -> None:
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and until <= since:
            message = f"until {until.isoformat()} is not after since {since.isoformat()}; pass an until later than since"
            raise ma.ValidationError({"until": [message]})


class KpiPageSchema(Schema):
    items = fields.List(
        view_row("One group's KPIs: the dimension's value, then each metric (see the KPI definitions)."),
        required=True,
    )
    next_cursor = fields.String(allow_none=True, required=True)


class SlaQuerySchema(PageQuerySchema):
    state = choice(SLA_STATES, metadata={"description": "Rows in this state now."})
    ticket_id = fields.UUID()


class SlaPageSchema(Schema):
    items = fields.List(
        view_row("One ticket, target and cycle: due time, elapsed, paused and remaining business minutes, state."),
        required=True,
    )
    next_cursor = fields.String(allow_none=True, required=True)


class EscalationQuerySchema(PageQuerySchema):
    state = choice(("open", "resolved", "all"), load_default="open")
    owner = short_text()
    level = fields.Integer(validate=validate.OneOf(ESCALATION_LEVELS))
    overdue = fields.Boolean(metadata={"description": "true keeps open escalations whose promised update is late."})


class EscalationPageSchema(Schema):
    items = fields.List(
        view_row("One escalation episode with its level, owner, promised update time and whether it is overdue."),
        required=True,
    )
    next_cursor = fields.String(allow_none=True, required=True)


class ImprovementLogQuerySchema(PageQuerySchema):
    phase = choice(("plan", "do", "check", "act"))
    kpi = short_text()


class ImprovementLogPageSchema(Schema):
    items = fields.List(
        view_row("One PDCA cycle: plan, change, check window, measured values, decision and target_met."),
        required=True,
    )
    next_cursor = fields.String(allow_none=True, required=True)
