import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from webhooks.retry import DEFAULT_SCHEDULE_SECONDS, classify, next_delay, parse_retry_after


class FixedJitter(random.Random):
    """Random source whose uniform() returns a chosen jitter, so expected delays can be worked out by hand."""

    def __init__(self, jitter):
        super().__init__(0)
        self.jitter = jitter
        self.bounds = []

    def uniform(self, a, b):
        self.bounds.append((a, b))
        return self.jitter


NOW = datetime(2015, 10, 21, 7, 20, 0, tzinfo=timezone.utc)


def test_default_schedule_totals():
    assert len(DEFAULT_SCHEDULE_SECONDS) == 7
    # 5 s + 5 min + 30 min + 2 h + 5 h + 10 h + 10 h = 27 h 35 min 5 s.
    assert sum(DEFAULT_SCHEDULE_SECONDS) == 27 * 3600 + 35 * 60 + 5


@pytest.mark.parametrize(
    "attempt_number, jitter, expected",
    [
        (1, 0.0, 5.0),
        (1, 0.1, 5.5),
        (2, 0.1, 330.0),
        (3, -0.1, 1620.0),
        (4, 0.05, 7560.0),
        (5, -0.05, 17100.0),
        (6, 0.0, 36000.0),
        (7, 0.1, 39600.0),
    ],
)
def test_next_delay_follows_schedule(attempt_number, jitter, expected):
    delay = next_delay(attempt_number, DEFAULT_SCHEDULE_SECONDS, FixedJitter(jitter), None)

    assert delay == pytest.approx(expected)


def test_next_delay_jitter_bounds():
    rng = FixedJitter(0.0)

    next_delay(1, DEFAULT_SCHEDULE_SECONDS, rng, None)

    assert rng.bounds == [(-0.1, 0.1)]


@pytest.mark.parametrize("attempt_number", [8, 9, 100])
def test_next_delay_none_when_exhausted(attempt_number):
    assert next_delay(attempt_number, DEFAULT_SCHEDULE_SECONDS, FixedJitter(0.0), None) is None


def test_next_delay_custom_schedule_exhausted():
    assert next_delay(2, (1, 2), FixedJitter(0.0), None) == pytest.approx(2.0)
    assert next_delay(3, (1, 2), FixedJitter(0.0), None) is None


@pytest.mark.parametrize(
    "attempt_number, jitter, retry_after, expected",
    [
        # Retry-After longer than the step wins, and jitter only adds to it.
        (1, 0.0, 120.0, 120.0),
        (1, -0.1, 120.0, 132.0),
        (1, 0.1, 120.0, 132.0),
        # Retry-After shorter than the step leaves the jittered step.
        (2, -0.1, 10.0, 270.0),
        (2, 0.1, 10.0, 330.0),
        # Retry-After between the jittered step and the step: never below Retry-After.
        (2, -0.1, 290.0, 319.0),
        # Retry-After above the longest step is cut to 36000 s.
        (1, 0.0, 1_000_000.0, 36000.0),
        (1, -0.1, 1_000_000.0, 39600.0),
        (1, 0.0, math.inf, 36000.0),
        # Zero, negative and NaN leave the schedule alone.
        (2, -0.1, 0.0, 270.0),
        (2, -0.1, -30.0, 270.0),
        (2, -0.1, math.nan, 270.0),
    ],
)
def test_next_delay_honours_retry_after(attempt_number, jitter, retry_after, expected):
    delay = next_delay(attempt_number, DEFAULT_SCHEDULE_SECONDS, FixedJitter(jitter), retry_after)

    assert delay == pytest.approx(expected)


def test_next_delay_none_despite_retry_after():
    assert next_delay(8, DEFAULT_SCHEDULE_SECONDS, FixedJitter(0.0), 60.0) is None


def test_next_delay_stays_within_jitter_range():
    rng = random.Random(20240229)

    for attempt_number, step in enumerate(DEFAULT_SCHEDULE_SECONDS, start=1):
        for _ in range(200):
            delay = next_delay(attempt_number, DEFAULT_SCHEDULE_SECONDS, rng, None)

            assert step * 0.9 <= delay <= step * 1.1


def test_next_delay_never_below_retry_after():
    rng = random.Random(7)

    for attempt_number in range(1, len(DEFAULT_SCHEDULE_SECONDS) + 1):
        for retry_after in (1.0, 299.0, 300.0, 5000.0, 36000.0, 90000.0):
            delay = next_delay(attempt_number, DEFAULT_SCHEDULE_SECONDS, rng, retry_after)

            step = DEFAULT_SCHEDULE_SECONDS[attempt_number - 1]
            requested = min(retry_after, 36000.0)
            assert delay >= requested
            assert delay <= max(step, requested) * 1.1


@pytest.mark.parametrize("attempt_number", [0, -1])
def test_next_delay_rejects_attempt_below_one(attempt_number):
    with pytest.raises(ValueError, match=f"attempt_number={attempt_number} is invalid; attempts are numbered from 1"):
        next_delay(attempt_number, DEFAULT_SCHEDULE_SECONDS, FixedJitter(0.0), None)


def test_next_delay_rejects_empty_schedule():
    with pytest.raises(ValueError, match="schedule is empty"):
        next_delay(1, (), FixedJitter(0.0), None)


def test_next_delay_rejects_zero_wait():
    with pytest.raises(ValueError, match="has a wait that is not positive"):
        next_delay(1, (5, 0, 10), FixedJitter(0.0), None)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        # 07:28:00 is 8 minutes after NOW.
        ("Wed, 21 Oct 2015 07:28:00 GMT", 480.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", 480.0),
        ("Wed, 21 Oct 2015 09:28:00 +0200", 480.0),
        # Dates in the past mean "retry now".
        ("Wed, 21 Oct 2015 07:19:59 GMT", 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
    ],
)
def test_parse_retry_after_valid(value, expected):
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "soon", "-5", "+5", "1.5", "1e3", "\u0661\u0662", "2015-10-21T07:28:00Z", "Wed, 99 Oct 2015 07:28:00 GMT"],
)
def test_parse_retry_after_ignores_garbage(value):
    assert parse_retry_after(value, NOW) is None


def test_parse_retry_after_uses_now_offset():
    now_in_berlin = NOW.astimezone(timezone(timedelta(hours=2)))

    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_in_berlin) == 480.0


def test_parse_retry_after_rejects_naive_now():
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        parse_retry_after("120", datetime(2015, 10, 21, 7, 20))


@pytest.mark.parametrize(
    "status, error, expected",
    [
        (200, None, "success"),
        (201, None, "success"),
        (204, None, "success"),
        (299, None, "success"),
        (410, None, "gone"),
        (429, None, "retry"),
        (500, None, "retry"),
        (502, None, "retry"),
        (503, None, "retry"),
        (504, None, "retry"),
        (599, None, "retry"),
        (None, "timed out after 10 s waiting for the response", "retry"),
        (None, "connection failed: Connection refused", "retry"),
        (400, None, "failed"),
        (401, None, "failed"),
        (403, None, "failed"),
        (404, None, "failed"),
        (409, None, "failed"),
        (413, None, "failed"),
        (301, None, "failed"),
        (302, None, "failed"),
        (307, None, "failed"),
        (308, None, "failed"),
        (100, None, "failed"),
        (600, None, "failed"),
        # A status means the receiver responded, so it decides the outcome
        # even when reading the rest of the response failed afterwards.
        (200, "timed out after 10 s reading the response body", "success"),
        (503, "connection reset while reading the response body", "retry"),
    ],
)
def test_classify(status, error, expected):
    assert classify(status, error) == expected


def test_classify_rejects_missing_status_and_error():
    with pytest.raises(ValueError, match="needs a status or an error, got neither"):
        classify(None, None)
