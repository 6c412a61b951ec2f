"""Periodic reports the scheduler produces: daily, weekly, monthly and quarterly."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from hub.domain.base import Context, ServiceAggregate, external_uuid, require_aware
from hub.domain.errors import InvalidValueError
from hub.domain.vocabulary import require_choice

# The subject of each cadence's review. The figures come from the KPI and SLA views.
CADENCES = {
    "daily": "incoming requests and SLA targets at risk",
    "weekly": "recurring issues and a quality-audit sample",
    "monthly": "KPI analysis",
    "quarterly": "training and workflow review",
}


def report_id(cadence: str, period_start: datetime) -> UUID:
    """Derive the report id from the cadence and period, so every process derives the same one."""
    return external_uuid("report", cadence, period_start.isoformat())


class Report(ServiceAggregate):
    """One run of a periodic review, with the figures it was based on."""

    class Generated(ServiceAggregate.Created):
        cadence: str
        period_start: datetime
        period_end: datetime
        figures: dict[str, Any]

        def apply(self, report: Report) -> None:
            report.cadence = self.cadence
            report.period_start = self.period_start
            report.period_end = self.period_end
            report.figures = self.figures

    @classmethod
    def generate(
        cls, ctx: Context, *, cadence: str, period_start: datetime, period_end: datetime,
        figures: dict[str, Any],
    ) -> Report:
        require_choice("cadence", cadence, tuple(CADENCES))
        require_aware("period_start", period_start)
        require_aware("period_end", period_end)
        if period_end <= period_start:
            raise InvalidValueError("period_end", "period_end must be after period_start")
        return cls._create(
            cls.Generated, id=report_id(cadence, period_start), **ctx.event_fields(),
            cadence=cadence, period_start=period_start, period_end=period_end, figures=figures,
        )

    def state(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "version": self.version, "cadence": self.cadence,
            "period_start": self.period_start, "period_end": self.period_end,
            "figures": dict(self.figures), "created_at": self.created_at,
        }
