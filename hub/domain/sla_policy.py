"""SLA policies: versioned per-priority targets, a business calendar and pause rules."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.domain.base import Context, ServiceAggregate
from hub.domain.errors import InvalidValueError
from hub.domain.vocabulary import OPEN_STATUSES, PRIORITIES, SLA_TARGETS, require_text

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Unless a policy states otherwise, waiting on the requester or a third party pauses
# the resolution and next-reply clocks; the first-response clock always runs.
DEFAULT_PAUSE_STATUSES = {
    "first_response": [],
    "next_reply": ["pending", "on_hold"],
    "resolution": ["pending", "on_hold"],
}
DEFAULT_AT_RISK_RATIO = 0.75


def validate_targets(targets: object) -> dict[str, dict[str, float | None]]:
    if not isinstance(targets, dict) or not targets:
        raise InvalidValueError("targets", "targets must map at least one priority to its targets")
    cleaned: dict[str, dict[str, float | None]] = {}
    for priority, per_target in targets.items():
        if priority not in PRIORITIES:
            msg = f"targets.{priority} is not a priority; use one of {', '.join(PRIORITIES)}"
            raise InvalidValueError(f"targets.{priority}", msg)
        if not isinstance(per_target, dict):
            msg = f"targets.{priority} must map target names to minutes"
            raise InvalidValueError(f"targets.{priority}", msg)
        cleaned[priority] = {}
        for name, minutes in per_target.items():
            field = f"targets.{priority}.{name}"
            if name not in SLA_TARGETS:
                msg = f"{field} is not a target; use one of {', '.join(SLA_TARGETS)}"
                raise InvalidValueError(field, msg)
            if minutes is None:
                cleaned[priority][name] = None
                continue
            if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
                msg = f"{field} must be a positive number of minutes, got {minutes!r}"
                raise InvalidValueError(field, msg)
            cleaned[priority][name] = minutes
    return cleaned


def validate_calendar(calendar: object) -> dict[str, Any] | None:
    """Check a business calendar; None means 24x7."""
    if calendar is None:
        return None
    if not isinstance(calendar, dict):
        raise InvalidValueError("calendar", "calendar must be an object or null for 24x7")
    zone = calendar.get("timezone")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"calendar.timezone {zone!r} is not an IANA time zone such as 'Europe/Berlin'"
        raise InvalidValueError("calendar.timezone", msg) from None
    hours = calendar.get("hours")
    if not isinstance(hours, dict):
        raise InvalidValueError("calendar.hours", "calendar.hours must map weekdays to intervals")
    interval_count = 0
    for day, intervals in hours.items():
        field = f"calendar.hours.{day}"
        if day not in WEEKDAYS:
            msg = f"{field} is not a weekday; use one of {', '.join(WEEKDAYS)}"
            raise InvalidValueError(field, msg)
        if not isinstance(intervals, list):
            raise InvalidValueError(field, f'{field} must be a list like [["08:00", "18:00"]]')
        for interval in intervals:
            if (
                not isinstance(interval, list | tuple) or len(interval) != 2
                or not all(isinstance(t, str) and _CLOCK_TIME.match(t) for t in interval)
                or interval[0] >= interval[1]
            ):
                msg = f'{field} has the invalid interval {interval!r}; use ["HH:MM", "HH:MM"] with start before end'
                raise InvalidValueError(field, msg)
            interval_count += 1
    if interval_count == 0:
        raise InvalidValueError("calendar.hours", "calendar.hours must contain at least one interval")
    holidays = calendar.get("holidays", [])
    if not isinstance(holidays, list) or not all(
        isinstance(day, str) and _ISO_DATE.match(day) for day in holidays
    ):
        raise InvalidValueError("calendar.holidays", "calendar.holidays must be a list of YYYY-MM-DD dates")
    cleaned = {
        "timezone": zone,
        "hours": {day: [list(i) for i in intervals] for day, intervals in hours.items()},
        "holidays": list(holidays),
    }
    # The SLA clocks build their calendar from these terms, so the same checks
    # (overlapping intervals, for one) must pass here, before anything is recorded.
    from projections.calendar import BusinessCalendar, CalendarError

    try:
        BusinessCalendar.from_dict(cleaned)
    except CalendarError as error:
        raise InvalidValueError("calendar", f"calendar is invalid: {error}") from None
    return cleaned


def validate_pause_statuses(pause_statuses: object) -> dict[str, list[str]]:
    if pause_statuses is None:
        return {name: list(statuses) for name, statuses in DEFAULT_PAUSE_STATUSES.items()}
    if not isinstance(pause_statuses, dict):
        raise InvalidValueError("pause_statuses", "pause_statuses must map targets to statuses")
    cleaned = {name: [] for name in SLA_TARGETS}
    for name, statuses in pause_statuses.items():
        field = f"pause_statuses.{name}"
        if name not in SLA_TARGETS:
            msg = f"{field} is not a target; use one of {', '.join(SLA_TARGETS)}"
            raise InvalidValueError(field, msg)
        if not isinstance(statuses, list) or any(s not in OPEN_STATUSES for s in statuses):
            msg = f"{field} must list statuses from {', '.join(OPEN_STATUSES)}"
            raise InvalidValueError(field, msg)
        cleaned[name] = list(statuses)
    return cleaned


class SlaPolicy(ServiceAggregate):
    """An SLA policy; each revision is kept so that measurements stay auditable."""

    class Defined(ServiceAggregate.Created):
        name: str
        targets: dict[str, Any]
        calendar: dict[str, Any] | None
        pause_statuses: dict[str, list[str]]
        public_notes_count_as_response: bool
        at_risk_ratio: float

        def apply(self, policy: SlaPolicy) -> None:
            policy.revision = 1
            _apply_terms(policy, self)

    class Revised(ServiceAggregate.Event):
        name: str
        targets: dict[str, Any]
        calendar: dict[str, Any] | None
        pause_statuses: dict[str, list[str]]
        public_notes_count_as_response: bool
        at_risk_ratio: float

        def apply(self, policy: SlaPolicy) -> None:
            policy.revision += 1
            _apply_terms(policy, self)

    @classmethod
    def define(cls, ctx: Context, *, policy_id: UUID, **terms: Any) -> SlaPolicy:
        return cls._create(cls.Defined, id=policy_id, **ctx.event_fields(), **_validate_terms(terms))

    def revise(self, ctx: Context, **terms: Any) -> None:
        """Record a revision: the terms given replace the current ones (``calendar=None`` means 24x7)."""
        merged = {**self.terms(), **terms}
        self._record(self.Revised, ctx, **_validate_terms(merged))

    def terms(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "targets": self.targets,
            "calendar": self.calendar,
            "pause_statuses": self.pause_statuses,
            "public_notes_count_as_response": self.public_notes_count_as_response,
            "at_risk_ratio": self.at_risk_ratio,
        }

    def state(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "version": self.version, "revision": self.revision,
            **self.terms(), "created_at": self.created_at, "updated_at": self.updated_at,
        }


def _apply_terms(policy: SlaPolicy, event: Any) -> None:
    policy.name = event.name
    policy.targets = event.targets
    policy.calendar = event.calendar
    policy.pause_statuses = event.pause_statuses
    policy.public_notes_count_as_response = event.public_notes_count_as_response
    policy.at_risk_ratio = event.at_risk_ratio


def _validate_terms(terms: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(terms) - {
        "name", "targets", "calendar", "pause_statuses",
        "public_notes_count_as_response", "at_risk_ratio",
    })
    if unknown:
        raise InvalidValueError(unknown[0], f"{unknown[0]!r} is not an SLA policy setting")
    require_text("name", terms.get("name"), max_length=200)
    ratio = terms.get("at_risk_ratio", DEFAULT_AT_RISK_RATIO)
    if ratio is None:
        ratio = DEFAULT_AT_RISK_RATIO
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        msg = f"at_risk_ratio must be a number between 0 and 1 (exclusive), got {ratio!r}"
        raise InvalidValueError("at_risk_ratio", msg)
    return {
        "name": terms["name"],
        "targets": validate_targets(terms.get("targets")),
        "calendar": validate_calendar(terms.get("calendar")),
        "pause_statuses": validate_pause_statuses(terms.get("pause_statuses")),
        "public_notes_count_as_response": bool(terms.get("public_notes_count_as_response", False)),
        "at_risk_ratio": float(ratio),
    }
