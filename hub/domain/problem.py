"""Problems: root cause analysis of recurring issues."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hub.domain.base import Context, ServiceAggregate
from hub.domain.errors import StateConflictError
from hub.domain.vocabulary import require_text

# The order an analysis moves through; each step may repeat, none may be skipped.
PROBLEM_STAGES = ("defined", "investigating", "root_cause_identified", "corrected", "monitoring", "closed")


class Problem(ServiceAggregate):
    """A recurring issue under root cause analysis."""

    class Defined(ServiceAggregate.Created):
        title: str
        description: str | None

        def apply(self, problem: Problem) -> None:
            problem.title = self.title
            problem.description = self.description
            problem.stage = "defined"
            problem.evidence = []
            problem.ticket_ids = []
            problem.root_cause = None
            problem.corrective_action = None
            problem.outcomes = []

    class EvidenceAdded(ServiceAggregate.Event):
        note: str
        ticket_ids: list[UUID]

        def apply(self, problem: Problem) -> None:
            problem.evidence = [*problem.evidence, {"note": self.note, "ticket_ids": self.ticket_ids}]
            problem.ticket_ids = [*problem.ticket_ids, *[t for t in self.ticket_ids if t not in problem.ticket_ids]]
            if problem.stage == "defined":
                problem.stage = "investigating"

    class RootCauseIdentified(ServiceAggregate.Event):
        root_cause: str

        def apply(self, problem: Problem) -> None:
            problem.root_cause = self.root_cause
            problem.stage = "root_cause_identified"

    class CorrectiveActionImplemented(ServiceAggregate.Event):
        action: str

        def apply(self, problem: Problem) -> None:
            problem.corrective_action = self.action
            problem.stage = "corrected"

    class OutcomeMonitored(ServiceAggregate.Event):
        observation: str
        recurrences: int

        def apply(self, problem: Problem) -> None:
            problem.outcomes = [*problem.outcomes, {"observation": self.observation, "recurrences": self.recurrences}]
            problem.stage = "monitoring"

    class Closed(ServiceAggregate.Event):
        note: str | None

        def apply(self, problem: Problem) -> None:
            problem.stage = "closed"

    @classmethod
    def define(cls, ctx: Context, *, problem_id: UUID, title: str, description: str | None = None) -> Problem:
        require_text("title", title, max_length=500)
        return cls._create(cls.Defined, id=problem_id, **ctx.event_fields(), title=title, description=description)

    def add_evidence(self, ctx: Context, note: str, ticket_ids: list[UUID]) -> None:
        self._check_open("add evidence")
        require_text("note", note)
        self._record(self.EvidenceAdded, ctx, note=note, ticket_ids=list(ticket_ids))

    def identify_root_cause(self, ctx: Context, root_cause: str) -> None:
        self._check_open("identify the root cause")
        require_text("root_cause", root_cause)
        self._record(self.RootCauseIdentified, ctx, root_cause=root_cause)

    def implement_corrective_action(self, ctx: Context, action: str) -> None:
        self._check_open("implement a corrective action")
        if self.root_cause is None:
            msg = f"cannot implement a corrective action on problem {self.id}: it is {self.stage}; identify the root cause first"
            raise StateConflictError(self.id, self.stage, msg)
        require_text("action", action)
        self._record(self.CorrectiveActionImplemented, ctx, action=action)

    def monitor_outcome(self, ctx: Context, observation: str, recurrences: int = 0) -> None:
        self._check_open("monitor the outcome")
        if self.corrective_action is None:
            msg = f"cannot monitor the outcome of problem {self.id}: it is {self.stage}; implement a corrective action first"
            raise StateConflictError(self.id, self.stage, msg)
        require_text("observation", observation)
        self._record(self.OutcomeMonitored, ctx, observation=observation, recurrences=recurrences)

    def close(self, ctx: Context, note: str | None = None) -> None:
        self._check_open("close")
        self._record(self.Closed, ctx, note=note)

    def _check_open(self, action: str) -> None:
        if self.stage == "closed":
            msg = f"cannot {action} on problem {self.id}: it is closed"
            raise StateConflictError(self.id, self.stage, msg)

    def state(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "version": self.version, "title": self.title,
            "description": self.description, "stage": self.stage,
            "evidence": [{"note": e["note"], "ticket_ids": [str(t) for t in e["ticket_ids"]]} for e in self.evidence],
            "ticket_ids": [str(t) for t in self.ticket_ids], "root_cause": self.root_cause,
            "corrective_action": self.corrective_action, "outcomes": list(self.outcomes),
            "created_at": self.created_at, "updated_at": self.updated_at,
        }
