"""The ticket: one client request from intake to closure and beyond."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from hub.domain.base import Context, ServiceAggregate, require_aware
from hub.domain.errors import InvalidValueError, StateConflictError
from hub.domain.vocabulary import (
    CES_SCALES,
    CHANNELS,
    CSAT_SCALES,
    ESCALATION_LEVELS,
    PRIORITIES,
    PRIORITY_CRITERIA,
    SETTABLE_STATUSES,
    SLA_TARGETS,
    require_choice,
    require_text,
)

# Intake fields whose absence is flagged so that an agent can complete them.
INTAKE_FIELDS = ("requester", "client_account_id", "subject", "description")


def missing_intake_fields(values: dict[str, Any]) -> list[str]:
    return [name for name in INTAKE_FIELDS if not values.get(name)]


class Ticket(ServiceAggregate):
    """A client request and everything that happened to it."""

    class Opened(ServiceAggregate.Created):
        channel: str
        requester: dict[str, Any] | None
        client_account_id: str | None
        subject: str
        description: str | None
        external: dict[str, Any] | None

        def apply(self, ticket: Ticket) -> None:
            ticket.channel = self.channel
            ticket.requester = self.requester
            ticket.client_account_id = self.client_account_id
            ticket.subject = self.subject
            ticket.description = self.description
            ticket.external = self.external
            ticket.status = "new"
            ticket.opened_at = self.occurred_at
            ticket.category = None
            ticket.subcategory = None
            ticket.symptom = None
            ticket.priority = None
            ticket.priority_criterion = None
            ticket.impact = None
            ticket.urgency = None
            ticket.group = None
            ticket.agent = None
            ticket.reassignment_count = 0
            ticket.public_reply_count = 0
            ticket.awaiting_agent_reply = True
            ticket.escalation = None
            ticket.escalation_count = 0
            ticket.resolution = None
            ticket.resolved_at = None
            ticket.first_resolved_at = None
            ticket.validation = None
            ticket.closed_at = None
            ticket.reopen_count = 0
            ticket.satisfaction = None
            ticket.effort = None
            ticket.problem_ids = []
            ticket.knowledge_article_ids = []
            ticket.facts = {}
            ticket.sla_alerts = []
            ticket.missing_fields = missing_intake_fields(ticket.__dict__)

    class IntakeDataCompleted(ServiceAggregate.Event):
        fields: dict[str, Any]

        def apply(self, ticket: Ticket) -> None:
            for name, value in self.fields.items():
                setattr(ticket, name, value)
            ticket.missing_fields = missing_intake_fields(ticket.__dict__)

    class Classified(ServiceAggregate.Event):
        category: str
        subcategory: str | None
        symptom: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.category = self.category
            ticket.subcategory = self.subcategory
            ticket.symptom = self.symptom

    class Prioritized(ServiceAggregate.Event):
        priority: str
        criterion: str
        impact: str | None
        urgency: str | None
        previous: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.priority = self.priority
            ticket.priority_criterion = self.criterion
            ticket.impact = self.impact
            ticket.urgency = self.urgency

    class Assigned(ServiceAggregate.Event):
        group: str | None
        agent: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.group = self.group
            ticket.agent = self.agent

    class Reassigned(ServiceAggregate.Event):
        group: str | None
        agent: str | None
        previous_group: str | None
        previous_agent: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.group = self.group
            ticket.agent = self.agent
            ticket.reassignment_count += 1

    class AgentReplied(ServiceAggregate.Event):
        body: str

        def apply(self, ticket: Ticket) -> None:
            ticket.public_reply_count += 1
            ticket.awaiting_agent_reply = False

    class PublicNoteAdded(ServiceAggregate.Event):
        """A note the requester can see but that was not sent to them."""

        body: str

    class InternalNoteAdded(ServiceAggregate.Event):
        body: str

    class ClarificationRequested(ServiceAggregate.Event):
        body: str

        def apply(self, ticket: Ticket) -> None:
            ticket.public_reply_count += 1
            ticket.awaiting_agent_reply = False

    class RequesterReplied(ServiceAggregate.Event):
        body: str

        def apply(self, ticket: Ticket) -> None:
            ticket.awaiting_agent_reply = True

    class StatusChanged(ServiceAggregate.Event):
        status: str
        previous: str

        def apply(self, ticket: Ticket) -> None:
            ticket.status = self.status

    class Escalated(ServiceAggregate.Event):
        level: int
        reason: str
        owner: str
        promised_by: datetime

        def apply(self, ticket: Ticket) -> None:
            ticket.escalation = {
                "level": self.level,
                "reason": self.reason,
                "owner": self.owner,
                "promised_by": self.promised_by,
                "escalated_at": self.occurred_at,
                "last_update_at": None,
            }
            ticket.escalation_count += 1

    class EscalationUpdated(ServiceAggregate.Event):
        note: str
        level: int
        owner: str
        promised_by: datetime | None

        def apply(self, ticket: Ticket) -> None:
            assert ticket.escalation is not None
            ticket.escalation = {
                **ticket.escalation,
                "level": self.level,
                "owner": self.owner,
                "promised_by": self.promised_by,
                "last_update_at": self.occurred_at,
            }

    class EscalationResolved(ServiceAggregate.Event):
        note: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.escalation = None

    class Resolved(ServiceAggregate.Event):
        resolution_code: str | None
        knowledge_article_id: str | None
        sop: str | None
        note: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.status = "resolved"
            ticket.resolution = {
                "resolution_code": self.resolution_code,
                "knowledge_article_id": self.knowledge_article_id,
                "sop": self.sop,
                "note": self.note,
            }
            ticket.resolved_at = self.occurred_at
            if ticket.first_resolved_at is None:
                ticket.first_resolved_at = self.occurred_at
            ticket.validation = None

    class ResolutionConfirmed(ServiceAggregate.Event):
        note: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.validation = "confirmed"

    class ResolutionRejected(ServiceAggregate.Event):
        reason: str

        def apply(self, ticket: Ticket) -> None:
            ticket.validation = "rejected"
            ticket.status = "open"

    class Closed(ServiceAggregate.Event):
        note: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.status = "closed"
            ticket.closed_at = self.occurred_at
            ticket.awaiting_agent_reply = False

    class Reopened(ServiceAggregate.Event):
        reason: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.status = "open"
            ticket.reopen_count += 1
            ticket.resolved_at = None
            ticket.closed_at = None
            ticket.validation = None
            ticket.awaiting_agent_reply = True

    class SatisfactionRated(ServiceAggregate.Event):
        score: int | str
        scale: str
        comment: str | None

        def apply(self, ticket: Ticket) -> None:
            ticket.satisfaction = {"score": self.score, "scale": self.scale}

    class EffortScored(ServiceAggregate.Event):
        score: int
        scale: str

        def apply(self, ticket: Ticket) -> None:
            ticket.effort = {"score": self.score, "scale": self.scale}

    class LinkedToProblem(ServiceAggregate.Event):
        problem_id: UUID

        def apply(self, ticket: Ticket) -> None:
            ticket.problem_ids = [*ticket.problem_ids, self.problem_id]

    class KnowledgeUsed(ServiceAggregate.Event):
        article_id: str

        def apply(self, ticket: Ticket) -> None:
            ticket.knowledge_article_ids = [*ticket.knowledge_article_ids, self.article_id]

    class ExternalFactRecorded(ServiceAggregate.Event):
        """A verdict a source system computed itself, kept apart from the hub's own."""

        name: str
        value: Any

        def apply(self, ticket: Ticket) -> None:
            ticket.facts = {**ticket.facts, self.name: self.value}

    class SlaAtRisk(ServiceAggregate.Event):
        target: str
        cycle: int
        due_at: datetime

        def apply(self, ticket: Ticket) -> None:
            ticket.sla_alerts = [*ticket.sla_alerts, f"at_risk:{self.target}:{self.cycle}"]

    class SlaBreached(ServiceAggregate.Event):
        target: str
        cycle: int
        due_at: datetime

        def apply(self, ticket: Ticket) -> None:
            ticket.sla_alerts = [*ticket.sla_alerts, f"breached:{self.target}:{self.cycle}"]

    class SyncConflictRecorded(ServiceAggregate.Event):
        """The hub and a connected tool both changed a field since the last sync."""

        field: str
        hub_value: Any
        tool_value: Any
        winner: str

    # Commands.

    @classmethod
    def open(
        cls,
        ctx: Context,
        *,
        ticket_id: UUID,
        subject: str,
        channel: str,
        requester: dict[str, Any] | None = None,
        client_account_id: str | None = None,
        description: str | None = None,
        external: dict[str, Any] | None = None,
    ) -> Ticket:
        require_text("subject", subject, max_length=1000)
        require_choice("channel", channel, CHANNELS)
        if requester is not None and not requester.get("id"):
            raise InvalidValueError("requester.id", "requester.id must not be empty")
        return cls._create(
            cls.Opened,
            id=ticket_id,
            **ctx.event_fields(),
            channel=channel,
            requester=requester,
            client_account_id=client_account_id,
            subject=subject,
            description=description,
            external=external,
        )

    def complete_intake(self, ctx: Context, fields: dict[str, Any]) -> None:
        self._check_not_closed("complete intake data")
        unknown = sorted(set(fields) - set(INTAKE_FIELDS))
        if unknown:
            msg = f"intake field {unknown[0]!r} is invalid; use one of {', '.join(INTAKE_FIELDS)}"
            raise InvalidValueError(unknown[0], msg)
        self._record(self.IntakeDataCompleted, ctx, fields=fields)

    def classify(
        self, ctx: Context, category: str, subcategory: str | None = None,
        symptom: str | None = None,
    ) -> None:
        self._check_not_closed("classify")
        require_text("category", category, max_length=200)
        self._record(
            self.Classified, ctx, category=category, subcategory=subcategory, symptom=symptom
        )

    def prioritize(
        self, ctx: Context, priority: str, criterion: str | None = None,
        impact: str | None = None, urgency: str | None = None,
    ) -> None:
        self._check_not_closed("prioritize")
        require_choice("priority", priority, PRIORITIES)
        self._record(
            self.Prioritized, ctx, priority=priority,
            criterion=criterion or PRIORITY_CRITERIA[priority],
            impact=impact, urgency=urgency, previous=self.priority,
        )

    def assign(
        self, ctx: Context, group: str | None, agent: str | None, *, reassignment: bool | None = None
    ) -> None:
        """Assign the ticket; a change of an existing assignment is a reassignment.

        A source that counts reassignments itself (ServiceNow's
        ``reassignment_count``) passes ``reassignment`` explicitly, so that an
        agent picked within the same group is recorded as an assignment that
        does not count as a hand-off.
        """
        self._check_not_closed("assign")
        if not group and not agent:
            raise InvalidValueError("group", "assign needs a group, an agent or both")
        if reassignment is None:
            reassignment = self.group is not None or self.agent is not None
        if not reassignment:
            self._record(self.Assigned, ctx, group=group, agent=agent)
        else:
            self._record(
                self.Reassigned, ctx, group=group, agent=agent,
                previous_group=self.group, previous_agent=self.agent,
            )

    def reply(self, ctx: Context, body: str) -> None:
        self._check_not_closed("reply")
        require_text("body", body, max_length=100_000)
        self._record(self.AgentReplied, ctx, body=body)

    def add_note(self, ctx: Context, body: str, *, public: bool = False) -> None:
        self._check_not_closed("add a note")
        require_text("body", body, max_length=100_000)
        event_class = self.PublicNoteAdded if public else self.InternalNoteAdded
        self._record(event_class, ctx, body=body)

    def request_clarification(self, ctx: Context, body: str) -> None:
        self._check_not_closed("request clarification")
        require_text("body", body, max_length=100_000)
        self._record(self.ClarificationRequested, ctx, body=body)

    def receive_requester_reply(self, ctx: Context, body: str) -> None:
        self._check_not_closed("add a requester reply")
        require_text("body", body, max_length=100_000)
        self._record(self.RequesterReplied, ctx, body=body)

    def change_status(self, ctx: Context, status: str) -> None:
        self._check_not_closed("change the status")
        if status in ("resolved", "closed"):
            command = "resolve" if status == "resolved" else "close"
            msg = f"status {status!r} is set by the {command} command, not by a status change"
            raise InvalidValueError("status", msg)
        require_choice("status", status, SETTABLE_STATUSES)
        if status == self.status:
            msg = f"ticket {self.id} is already {status}"
            raise StateConflictError(self.id, self.status, msg)
        self._record(self.StatusChanged, ctx, status=status, previous=self.status)

    def escalate(
        self, ctx: Context, level: int, reason: str, owner: str, promised_by: datetime
    ) -> None:
        self._check_not_closed("escalate")
        require_choice("level", level, ESCALATION_LEVELS)
        require_text("reason", reason, max_length=2000)
        require_text("owner", owner, max_length=200)
        require_aware("promised_by", promised_by)
        if self.escalation is not None:
            msg = (
                f"ticket {self.id} is already escalated at level {self.escalation['level']}; "
                "update the escalation instead"
            )
            raise StateConflictError(self.id, "escalated", msg)
        self._record(
            self.Escalated, ctx, level=level, reason=reason, owner=owner, promised_by=promised_by
        )

    def update_escalation(
        self, ctx: Context, note: str, *, level: int | None = None, owner: str | None = None,
        promised_by: datetime | None = None,
    ) -> None:
        self._check_escalated("update the escalation")
        require_text("note", note, max_length=10_000)
        if level is not None:
            require_choice("level", level, ESCALATION_LEVELS)
        if promised_by is not None:
            require_aware("promised_by", promised_by)
        assert self.escalation is not None
        self._record(
            self.EscalationUpdated, ctx, note=note,
            level=level if level is not None else self.escalation["level"],
            owner=owner or self.escalation["owner"],
            promised_by=promised_by,
        )

    def resolve_escalation(self, ctx: Context, note: str | None = None) -> None:
        self._check_escalated("resolve the escalation")
        self._record(self.EscalationResolved, ctx, note=note)

    def resolve(
        self, ctx: Context, resolution_code: str | None = None,
        knowledge_article_id: str | None = None, sop: str | None = None,
        note: str | None = None,
    ) -> None:
        self._check_not_closed("resolve")
        if self.status == "resolved":
            msg = f"ticket {self.id} is already resolved"
            raise StateConflictError(self.id, self.status, msg)
        self._record(
            self.Resolved, ctx, resolution_code=resolution_code,
            knowledge_article_id=knowledge_article_id, sop=sop, note=note,
        )

    def confirm_resolution(self, ctx: Context, note: str | None = None) -> None:
        self._check_resolved("confirm the resolution")
        self._record(self.ResolutionConfirmed, ctx, note=note)

    def reject_resolution(self, ctx: Context, reason: str) -> None:
        self._check_resolved("reject the resolution")
        require_text("reason", reason, max_length=10_000)
        self._record(self.ResolutionRejected, ctx, reason=reason)

    def close(self, ctx: Context, note: str | None = None) -> None:
        self._check_not_closed("close")
        self._record(self.Closed, ctx, note=note)

    def reopen(self, ctx: Context, reason: str | None = None) -> None:
        if self.status not in ("resolved", "closed"):
            msg = (
                f"cannot reopen ticket {self.id}: it is {self.status}; "
                "only a resolved or closed ticket can be reopened"
            )
            raise StateConflictError(self.id, self.status, msg)
        self._record(self.Reopened, ctx, reason=reason)

    def rate_satisfaction(
        self, ctx: Context, score: int | str, scale: str = "1-5", comment: str | None = None
    ) -> None:
        require_choice("scale", scale, tuple(CSAT_SCALES))
        bounds = CSAT_SCALES[scale]
        if bounds is None:
            require_choice("score", score, ("good", "bad"))
        else:
            _require_score(score, bounds, scale)
        self._record(self.SatisfactionRated, ctx, score=score, scale=scale, comment=comment)

    def score_effort(self, ctx: Context, score: int, scale: str = "1-7") -> None:
        require_choice("scale", scale, tuple(CES_SCALES))
        _require_score(score, CES_SCALES[scale], scale)
        self._record(self.EffortScored, ctx, score=score, scale=scale)

    def link_to_problem(self, ctx: Context, problem_id: UUID) -> None:
        if problem_id in self.problem_ids:
            msg = f"ticket {self.id} is already linked to problem {problem_id}"
            raise StateConflictError(self.id, self.status, msg)
        self._record(self.LinkedToProblem, ctx, problem_id=problem_id)

    def use_knowledge(self, ctx: Context, article_id: str) -> None:
        require_text("article_id", article_id, max_length=200)
        self._record(self.KnowledgeUsed, ctx, article_id=article_id)

    def record_fact(self, ctx: Context, name: str, value: Any) -> None:
        require_text("name", name, max_length=200)
        self._record(self.ExternalFactRecorded, ctx, name=name, value=value)

    def flag_sla(self, ctx: Context, kind: str, target: str, cycle: int, due_at: datetime) -> bool:
        """Record an SLA alert once per kind, target and cycle; return False if already recorded."""
        require_choice("target", target, SLA_TARGETS)
        require_choice("kind", kind, ("at_risk", "breached"))
        if f"{kind}:{target}:{cycle}" in self.sla_alerts:
            return False
        event_class = self.SlaAtRisk if kind == "at_risk" else self.SlaBreached
        self._record(event_class, ctx, target=target, cycle=cycle, due_at=due_at)
        return True

    def record_conflict(
        self, ctx: Context, field: str, hub_value: Any, tool_value: Any, winner: str
    ) -> None:
        require_choice("winner", winner, ("hub", "tool"))
        self._record(
            self.SyncConflictRecorded, ctx, field=field, hub_value=hub_value,
            tool_value=tool_value, winner=winner,
        )

    # Guards.

    def _record(self, event_class: type, ctx: Context, **fields: Any) -> None:
        # Every duration the KPIs report starts at the opening, so nothing on a
        # ticket may claim to have happened before it.
        occurred_at = ctx.event_fields()["occurred_at"]
        if occurred_at < self.opened_at:
            msg = (
                f"occurred_at {occurred_at.isoformat()} is before ticket {self.id} was opened "
                f"at {self.opened_at.isoformat()}; a change cannot precede the opening"
            )
            raise InvalidValueError("occurred_at", msg)
        super()._record(event_class, ctx, **fields)

    def _check_not_closed(self, action: str) -> None:
        if self.status == "closed":
            msg = f"cannot {action} on ticket {self.id}: it is closed; reopen it first"
            raise StateConflictError(self.id, self.status, msg)

    def _check_resolved(self, action: str) -> None:
        if self.status != "resolved":
            msg = (
                f"cannot {action} on ticket {self.id}: it is {self.status}; "
                "only a resolved ticket can be validated"
            )
            raise StateConflictError(self.id, self.status, msg)

    def _check_escalated(self, action: str) -> None:
        self._check_not_closed(action)
        if self.escalation is None:
            msg = f"cannot {action} on ticket {self.id}: it is not escalated"
            raise StateConflictError(self.id, "not escalated", msg)

    def state(self) -> dict[str, Any]:
        """Return the ticket's current state as plain values."""
        return {
            "id": str(self.id),
            "version": self.version,
            "status": self.status,
            "channel": self.channel,
            "subject": self.subject,
            "description": self.description,
            "requester": self.requester,
            "client_account_id": self.client_account_id,
            "external": self.external,
            "missing_fields": list(self.missing_fields),
            "category": self.category,
            "subcategory": self.subcategory,
            "symptom": self.symptom,
            "priority": self.priority,
            "priority_criterion": self.priority_criterion,
            "impact": self.impact,
            "urgency": self.urgency,
            "group": self.group,
            "agent": self.agent,
            "reassignment_count": self.reassignment_count,
            "public_reply_count": self.public_reply_count,
            "awaiting_agent_reply": self.awaiting_agent_reply,
            "escalation": self.escalation,
            "escalation_count": self.escalation_count,
            "resolution": self.resolution,
            "validation": self.validation,
            "opened_at": self.opened_at,
            "first_resolved_at": self.first_resolved_at,
            "resolved_at": self.resolved_at,
            "closed_at": self.closed_at,
            "reopen_count": self.reopen_count,
            "satisfaction": self.satisfaction,
            "effort": self.effort,
            "problem_ids": [str(problem_id) for problem_id in self.problem_ids],
            "knowledge_article_ids": list(self.knowledge_article_ids),
            "facts": dict(self.facts),
            "updated_at": self.updated_at,
            "recorded_at": self.modified_on,
        }


def _require_score(score: object, bounds: tuple[int, int], scale: str) -> None:
    low, high = bounds
    if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
        msg = f"score {score!r} is outside the {scale} scale; use a whole number from {low} to {high}"
        raise InvalidValueError("score", msg)
