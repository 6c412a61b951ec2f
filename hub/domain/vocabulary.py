"""The fixed vocabularies of the service domain."""

from __future__ import annotations

from hub.domain.errors import InvalidValueError

CHANNELS = ("email", "web", "phone", "chat", "api", "social", "other")

# Priority from business impact, highest first.
PRIORITIES = ("critical", "high", "medium", "low")
PRIORITY_CRITERIA = {
    "critical": "service failure",
    "high": "revenue impact",
    "medium": "functional issue",
    "low": "informational",
}

STATUSES = ("new", "open", "pending", "on_hold", "resolved", "closed")
# Statuses a plain status change may set; resolving and closing have their own commands.
SETTABLE_STATUSES = ("new", "open", "pending", "on_hold")
OPEN_STATUSES = ("new", "open", "pending", "on_hold")

SLA_TARGETS = ("first_response", "next_reply", "resolution")

ESCALATION_LEVELS = (1, 2, 3)

CSAT_SCALES = {"1-5": (1, 5), "good_bad": None}
CES_SCALES = {"1-7": (1, 7), "1-5": (1, 5)}
NPS_RANGE = (0, 10)

IMPROVEMENT_DECISIONS = ("standardized", "abandoned")


def require_choice(field: str, value: object, choices: tuple) -> None:
    if value not in choices:
        allowed = ", ".join(str(choice) for choice in choices)
        msg = f"{field} {value!r} is invalid; use one of {allowed}"
        raise InvalidValueError(field, msg)


def require_text(field: str, value: object, *, max_length: int = 10_000) -> None:
    if not isinstance(value, str) or not value.strip():
        msg = f"{field} must be a non-empty string"
        raise InvalidValueError(field, msg)
    if len(value) > max_length:
        msg = f"{field} is {len(value)} characters long; the maximum is {max_length}"
        raise InvalidValueError(field, msg)
