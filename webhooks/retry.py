"""Retry policy for webhook deliveries: outcome of an attempt and the wait before the next.

``classify`` turns one attempt's HTTP status or transport error into an
outcome, and ``next_delay`` reads the wait before the next attempt from a
schedule, with jitter and the receiver's ``Retry-After`` taken into account.
The status handling follows the Standard Webhooks 1.0 specification.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal

# Seconds to wait before retry 1, 2, ... 7, so a delivery gets 8 attempts
# spread over 27 h 35 min 5 s, give or take the jitter.
DEFAULT_SCHEDULE_SECONDS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)

# Each wait varies by up to this fraction either way, so deliveries that
# failed together do not all retry in the same second.
JITTER_FRACTION = 0.1

Outcome = Literal["success", "retry", "gone", "failed"]


def next_delay(
    attempt_number: int,
    schedule: Sequence[float],
    rng: random.Random,
    retry_after: float | None,
) -> float | None:
    """Return the seconds to wait after failed attempt ``attempt_number``, or None.

    ``attempt_number`` counts from 1 for the first attempt, so attempt n waits
    ``schedule[n - 1]`` seconds, varied by up to ±10%. None means the
    schedule is exhausted and the delivery has failed for good.

    ``retry_after`` is the receiver's ``Retry-After`` in seconds. It sets a
    minimum wait: the delay is never below it, and jitter only lengthens it.
    Values above the schedule's longest step are cut to that step, so a
    receiver cannot park a delivery for longer than the schedule allows.
    """
    if isinstance(attempt_number, bool) or not isinstance(attempt_number, int):
        msg = f"attempt_number must be an int, got {type(attempt_number).__name__}"
        raise TypeError(msg)
    if attempt_number < 1:
        msg = f"attempt_number={attempt_number} is invalid; attempts are numbered from 1"
        raise ValueError(msg)
    if not schedule:
        msg = "schedule is empty; pass the waits between attempts, e.g. DEFAULT_SCHEDULE_SECONDS"
        raise ValueError(msg)
    if any(not step > 0 for step in schedule):
        msg = f"schedule {tuple(schedule)!r} has a wait that is not positive; every wait must be > 0 seconds"
        raise ValueError(msg)
    if attempt_number > len(schedule):
        return None

    jitter = rng.uniform(-JITTER_FRACTION, JITTER_FRACTION)
    delay = schedule[attempt_number - 1] * (1 + jitter)
    if retry_after is None or math.isnan(retry_after):
        return delay

    requested = min(max(retry_after, 0.0), max(schedule))
    return max(delay, requested * (1 + abs(jitter)))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Parse a ``Retry-After`` header value into seconds from ``now``.

    Accepts both forms that RFC 9110 allows: a whole number of seconds
    ("120") and an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"). A date in the
    past gives 0.0. A missing, empty or malformed value gives None, so the
    caller falls back to the schedule. ``now`` must be timezone-aware.
    """
    if now.tzinfo is None:
        msg = "now must be timezone-aware, e.g. datetime.now(timezone.utc)"
        raise ValueError(msg)
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None

    # isdecimal() rejects signs, fractions and exponents, which the
    # delta-seconds form does not allow.
    if text.isascii() and text.isdecimal():
        return float(int(text))

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # parsedate_to_datetime returns a naive datetime for the "-0000"
        # zone, which RFC 5322 defines as UTC without a known local offset.
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def classify(status: int | None, error: str | None) -> Outcome:
    """Classify one delivery attempt.

    - ``"success"``: a 2xx status.
    - ``"gone"``: 410 Gone. The receiver no longer wants messages, so the
      endpoint must be disabled.
    - ``"retry"``: a transport error without a status (timeout, refused or
      reset connection), 429 or any 5xx. The receiver may recover, so the
      next attempt honours ``Retry-After``.
    - ``"failed"``: every other status: other 4xx, 1xx, and 3xx because
      redirects are not followed. The attempt failed, but the delivery still
      moves on to the next step of the schedule, because receivers often
      fix such errors (a rotated credential, a route deployed late).

    When both are given, the status wins, because the receiver has responded.
    """
    if status is None:
        if error is None:
            msg = "classify() needs a status or an error, got neither"
            raise ValueError(msg)
        return "retry"
    if 200 <= status <= 299:
        return "success"
    if status == 410:
        return "gone"
    if status == 429 or 500 <= status <= 599:
        return "retry"
    return "failed"
