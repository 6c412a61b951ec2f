"""Improvements: plan-do-check-act cycles measured against a KPI."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from hub.domain.base import Context, ServiceAggregate, require_aware
from hub.domain.errors import InvalidValueError, StateConflictError
from hub.domain.vocabulary import IMPROVEMENT_DECISIONS, require_choice, require_text


class Improvement(ServiceAggregate):
    """One PDCA cycle: plan, do, check, act."""

    class Planned(ServiceAggregate.Created):
        title: str
        kpi: str
        baseline: float
        target: float
        filters: dict[str, Any]

        def apply(self, improvement: Improvement) -> None:
            improvement.title = self.title
            improvement.kpi = self.kpi
            improvement.baseline = self.baseline
            improvement.target = self.target
            improvement.filters = self.filters
            improvement.phase = "plan"
            improvement.change = None
            improvement.done_at = None
            improvement.check = None
            improvement.decision = None

    class Done(ServiceAggregate.Event):
        change: str

        def apply(self, improvement: Improvement) -> None:
            improvement.change = self.change
            improvement.done_at = self.occurred_at
            improvement.phase = "do"

    class Checked(ServiceAggregate.Event):
        measured: float
        window_start: datetime
        window_end: datetime

        def apply(self, improvement: Improvement) -> None:
            improvement.check = {
                "measured": self.measured,
                "window_start": self.window_start,
                "window_end": self.window_end,
            }
            improvement.phase = "check"

    class Acted(ServiceAggregate.Event):
        decision: str
        note: str | None

        def apply(self, improvement: Improvement) -> None:
            improvement.decision = self.decision
            improvement.phase = "act"

    @classmethod
    def plan(
        cls, ctx: Context, *, improvement_id: UUID, title: str, kpi: str,
        baseline: float, target: float, filters: dict[str, Any] | None = None,
    ) -> Improvement:
        require_text("title", title, max_length=500)
        require_text("kpi", kpi, max_length=100)
        for name, value in (("baseline", baseline), ("target", target)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidValueError(name, f"{name} must be a number, got {value!r}")
        return cls._create(
            cls.Planned, id=improvement_id, **ctx.event_fields(), title=title, kpi=kpi,
            baseline=float(baseline), target=float(target), filters=dict(filters or {}),
        )

    def do(self, ctx: Context, change: str) -> None:
        self._check_phase("record the change", "plan")
        require_text("change", change)
        self._record(self.Done, ctx, change=change)

    def check_result(self, ctx: Context, measured: float, window_start: datetime, window_end: datetime) -> None:
        self._check_phase("check the result", "do")
        if isinstance(measured, bool) or not isinstance(measured, (int, float)):
            raise InvalidValueError("measured", f"measured must be a number, got {measured!r}")
        require_aware("window_start", window_start)
        require_aware("window_end", window_end)
        if window_end <= window_start:
            raise InvalidValueError("window_end", "window_end must be after window_start")
        self._record(self.Checked, ctx, measured=float(measured), window_start=window_start, window_end=window_end)

    def act(self, ctx: Context, decision: str, note: str | None = None) -> None:
        self._check_phase("decide", "check")
        require_choice("decision", decision, IMPROVEMENT_DECISIONS)
        self._record(self.Acted, ctx, decision=decision, note=note)

    def _check_phase(self, action: str, expected: str) -> None:
        if self.phase != expected:
            msg = f"cannot {action} on improvement {self.id}: it is in phase {self.phase}, expected {expected}"
            raise StateConflictError(self.id, self.phase, msg)

    def state(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "version": self.version, "title": self.title, "kpi": self.kpi,
            "baseline": self.baseline, "target": self.target, "filters": dict(self.filters),
            "phase": self.phase, "change": self.change, "done_at": self.done_at,
            "check": self.check, "decision": self.decision,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }
