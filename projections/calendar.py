"""Business-hours arithmetic for SLA clocks.

A :class:`BusinessCalendar` is either 24x7, where every minute counts, or a weekly
schedule of opening hours in one IANA time zone, minus holidays. Opening hours are
local wall-clock times. Each local day is converted to UTC on its own, so a day is
23 or 25 hours long across a DST change, and the calendar never steps by a fixed
24 hours.

Local times are converted with ``fold=0``, which zoneinfo applies as follows
(PEP 495):

- A local time that occurs twice (the hour repeated when clocks go back) means its
  first occurrence, so an interval inside the repeated hour counts once.
- A local time that does not exist (the hour skipped when clocks go forward) uses
  the UTC offset from before the change. It lands later by the length of the gap,
  so in Europe/Berlin 02:30 on a spring-forward Sunday becomes 03:30 CEST.

The module does no I/O and keeps no global state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["MAX_SEARCH_DAYS", "BusinessCalendar", "CalendarError"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPEC_KEYS = ("timezone", "hours", "holidays")

MINUTES_PER_DAY = 24 * 60

# Upper bound on the local days add() walks before it gives up. It stops a calendar
# whose holidays cover every open day from looping forever, and it caps the work
# for a target far too large. 3660 days is just over ten years.
MAX_SEARCH_DAYS = 3660

# Maximum number of local days whose UTC intervals one calendar caches, about
# eleven years. An SLA replay moves through dates mostly in order, so the cache
# is cleared when full, which is cheaper than LRU bookkeeping per lookup.
DAY_CACHE_SIZE = 4096

_TIME_PATTERN = re.compile(r"^([0-9]{2}):([0-9]{2})$")
_DATE_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ONE_DAY = timedelta(days=1)
_ONE_MINUTE = timedelta(minutes=1)

_INTERVAL_FORM = "a list of ['HH:MM', 'HH:MM'] intervals"
_HOURS_FORM = "a mapping of weekday ('mon' to 'sun') to " + _INTERVAL_FORM

# Opening hours of one weekday as (start, end) minute-of-day pairs. The end may be
# 1440, which is 24:00.
DayHours = tuple[tuple[int, int], ...]
Interval = tuple[datetime, datetime]


class CalendarError(ValueError):
    """Invalid calendar spec, or a target the calendar cannot reach."""


class BusinessCalendar:
    """Weekly business hours in one time zone, with holidays, or 24x7.

    Build calendars with :meth:`from_dict`. The constructor takes values that
    from_dict has already validated.

    Each instance caches the UTC intervals of the local days it has used. Threads
    may share an instance: at worst two of them build the same day twice.
    """

    def __init__(
        self,
        zone: ZoneInfo | None,
        weekly_hours: tuple[DayHours, ...] = (),
        holidays: frozenset[date] = frozenset(),
    ) -> None:
        self._zone = zone
        self._weekly_hours = weekly_hours
        self._holidays = holidays
        self._day_cache: dict[date, tuple[Interval, ...]] = {}

    # Construction and serialisation

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None) -> BusinessCalendar:
        """Parse a calendar spec, or return a 24x7 calendar for ``None``.

        The spec has the form::

            {"timezone": "Europe/Berlin",
             "hours": {"mon": [["08:00", "18:00"]], "sat": [], ...},
             "holidays": ["2024-12-25"]}

        A weekday may have several intervals and a missing weekday is closed.
        "24:00" is allowed as an interval end. Holidays are local dates with no
        business time and may be omitted.

        Raises:
            CalendarError: the spec is invalid. The message names the key and the
                accepted form.
        """
        if spec is None:
            return cls(None)
        if not isinstance(spec, Mapping):
            msg = (
                "calendar spec must be a dict with keys 'timezone', 'hours' and"
                f" optionally 'holidays', or None for 24x7; got {type(spec).__name__}"
            )
            raise CalendarError(msg)
        for key in spec:
            if key not in SPEC_KEYS:
                msg = (
                    f"unknown calendar key {key!r}; accepted keys are 'timezone',"
                    " 'hours' and 'holidays'"
                )
                raise CalendarError(msg)

        zone = _parse_timezone(spec.get("timezone"))
        weekly_hours = _parse_hours(spec.get("hours"))
        holidays = _parse_holidays(spec.get("holidays", []))
        return cls(zone, weekly_hours, holidays)

    def to_dict(self) -> dict[str, Any] | None:
        """Return the spec that :meth:`from_dict` turns back into this calendar.

        A 24x7 calendar returns ``None``. Every weekday is listed, and closed days
        have an empty list.
        """
        if self._zone is None:
            return None
        hours = {
            weekday: [
                [_format_minute(start), _format_minute(end)] for start, end in day_hours
            ]
            for weekday, day_hours in zip(WEEKDAYS, self._weekly_hours)
        }
        return {
            "timezone": self._zone.key,
            "hours": hours,
            "holidays": [holiday.isoformat() for holiday in sorted(self._holidays)],
        }

    @property
    def is_24x7(self) -> bool:
        """Whether every minute counts as business time."""
        return self._zone is None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessCalendar):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return f"BusinessCalendar.from_dict({self.to_dict()!r})"

    def _identity(self) -> tuple[object, ...]:
        zone_key = None if self._zone is None else self._zone.key
        return (zone_key, self._weekly_hours, self._holidays)

    # Business-time arithmetic

    def add(self, start: datetime, minutes: float) -> datetime:
        """Return the UTC instant at which ``minutes`` of business time have elapsed.

        Counting begins at ``start``, or at the next opening when ``start`` is
        outside business hours. When the last minute ends exactly at a closing
        time, the result is that closing time. ``minutes == 0`` returns ``start``
        converted to UTC, even outside business hours. Fractions of a minute are
        kept to the microsecond.

        Raises:
            ValueError: ``start`` is naive, or ``minutes`` is negative or not finite.
            CalendarError: the target needs more than ``MAX_SEARCH_DAYS`` local
                days.
        """
        start_utc = _to_utc(start, "start")
        remaining = _minutes_to_timedelta(minutes)
        if not remaining:
            return start_utc
        if self._zone is None:
            return start_utc + remaining

        day = start_utc.astimezone(self._zone).date()
        for _ in range(MAX_SEARCH_DAYS):
            for opens, closes in self._business_intervals(day):
                if closes <= start_utc:
                    continue
                opens = max(opens, start_utc)
                available = closes - opens
                if remaining <= available:
                    return opens + remaining
                remaining -= available
            day += _ONE_DAY

        found = _to_minutes(_minutes_to_timedelta(minutes) - remaining)
        msg = (
            f"cannot add {minutes} business minutes to {start.isoformat()}: the"
            f" {MAX_SEARCH_DAYS} local days after it contain only {found:g} business"
            " minutes; check that 'hours' and 'holidays' leave enough open time, or"
            " lower the target"
        )
        raise CalendarError(msg)

    def between(self, start: datetime, end: datetime) -> float:
        """Return the business minutes in ``[start, end)``, or 0 if end <= start.

        The result is exact to the microsecond, before conversion to a float.

        Raises:
            ValueError: ``start`` or ``end`` is naive.
        """
        start_utc = _to_utc(start, "start")
        end_utc = _to_utc(end, "end")
        if end_utc <= start_utc:
            return 0.0
        if self._zone is None:
            return _to_minutes(end_utc - start_utc)

        # Each day's intervals lie between its own local midnight and the next,
        # both taken with fold=0. An instant in the second pass of a repeated hour
        # that crosses midnight (America/St_Johns, 2010-11-07 00:01 -> 2010-11-06
        # 23:01) belongs to the later day although astimezone() gives the earlier
        # date, so the walk goes one day past the end's local date.
        day = start_utc.astimezone(self._zone).date()
        last_day = end_utc.astimezone(self._zone).date() + _ONE_DAY
        total = timedelta(0)
        while day <= last_day:
            for opens, closes in self._business_intervals(day):
                overlap_start = max(opens, start_utc)
                overlap_end = min(closes, end_utc)
                if overlap_end > overlap_start:
                    total += overlap_end - overlap_start
            day += _ONE_DAY
        return _to_minutes(total)

    # Day intervals

    def _business_intervals(self, day: date) -> tuple[Interval, ...]:
        intervals = self._day_cache.get(day)
        if intervals is None:
            if len(self._day_cache) >= DAY_CACHE_SIZE:
                self._day_cache.clear()
            intervals = self._build_business_intervals(day)
            self._day_cache[day] = intervals
        return intervals

    def _build_business_intervals(self, day: date) -> tuple[Interval, ...]:
        """Convert the opening hours of one local date to sorted, disjoint UTC intervals."""
        if day in self._holidays:
            return ()
        day_hours = self._weekly_hours[day.weekday()]
        if not day_hours:
            return ()

        # Clip to the day's own UTC span, so that the days tile the time line
        # and no interval is counted under two dates. This only changes anything
        # when a DST gap starts before local midnight and ends after it.
        day_start = self._local_to_utc(day, 0)
        day_end = self._local_to_utc(day, MINUTES_PER_DAY)
        converted: list[Interval] = []
        for start_minute, end_minute in day_hours:
            opens = max(self._local_to_utc(day, start_minute), day_start)
            closes = min(self._local_to_utc(day, end_minute), day_end)
            # NOTE: an interval that starts in a spring-forward gap moves later by
            # the gap's length. If it ends within that length after the gap, as
            # 02:30-03:10 does in Europe/Berlin, it becomes empty and is dropped.
            if closes > opens:
                converted.append((opens, closes))

        # The same shift can make two intervals of one day overlap, so merge them
        # to count the shared time once.
        converted.sort()
        merged: list[Interval] = []
        for opens, closes in converted:
            if merged and opens <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
            else:
                merged.append((opens, closes))
        return tuple(merged)

    def _local_to_utc(self, day: date, minute_of_day: int) -> datetime:
        day_offset, minute = divmod(minute_of_day, MINUTES_PER_DAY)
        local = datetime.combine(
            day + timedelta(days=day_offset),
            time(minute // 60, minute % 60),
            tzinfo=self._zone,
        )
        return local.astimezone(timezone.utc)


# Spec parsing


def _parse_timezone(value: object) -> ZoneInfo:
    if value is None:
        msg = (
            "calendar key 'timezone' is missing; set it to an IANA time zone name"
            " such as 'Europe/Berlin'"
        )
        raise CalendarError(msg)
    if not isinstance(value, str):
        msg = (
            "calendar key 'timezone' must be an IANA time zone name such as"
            f" 'Europe/Berlin'; got {value!r}"
        )
        raise CalendarError(msg)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = (
            f"calendar key 'timezone' has unknown time zone {value!r}; use an IANA"
            " time zone name such as 'Europe/Berlin'"
        )
        raise CalendarError(msg) from None


def _parse_hours(value: object) -> tuple[DayHours, ...]:
    if value is None:
        msg = f"calendar key 'hours' is missing; set it to {_HOURS_FORM}"
        raise CalendarError(msg)
    if not isinstance(value, Mapping):
        msg = f"calendar key 'hours' must be {_HOURS_FORM}; got {value!r}"
        raise CalendarError(msg)
    for weekday in value:
        if weekday not in WEEKDAYS:
            msg = (
                f"calendar key 'hours' has unknown weekday {weekday!r}; use one of"
                f" {', '.join(repr(name) for name in WEEKDAYS)}"
            )
            raise CalendarError(msg)

    weekly_hours = tuple(
        _parse_day_hours(weekday, value.get(weekday, [])) for weekday in WEEKDAYS
    )
    if not any(weekly_hours):
        msg = (
            "calendar key 'hours' must contain at least one interval, such as"
            " {'mon': [['08:00', '18:00']]}; use None instead of a spec for a 24x7"
            " calendar"
        )
        raise CalendarError(msg)
    return weekly_hours


def _parse_day_hours(weekday: str, value: object) -> DayHours:
    key = f"hours[{weekday!r}]"
    if isinstance(value, str) or not isinstance(value, Sequence):
        msg = f"{key} must be {_INTERVAL_FORM}; got {value!r}"
        raise CalendarError(msg)

    parsed: list[tuple[int, int, int]] = []
    for index, pair in enumerate(value):
        interval_key = f"{key}[{index}]"
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            msg = f"{interval_key} must be a pair ['HH:MM', 'HH:MM']; got {pair!r}"
            raise CalendarError(msg)
        start = _parse_clock_time(interval_key, pair[0])
        end = _parse_clock_time(interval_key, pair[1])
        if start == MINUTES_PER_DAY:
            msg = f"{interval_key} starts at '24:00'; an interval must start by '23:59'"
            raise CalendarError(msg)
        if end <= start:
            msg = (
                f"{interval_key} ends at {pair[1]!r}, which is not after its start"
                f" {pair[0]!r}; split an interval that crosses midnight into"
                " [start, '24:00'] on this day and ['00:00', end] on the next"
            )
            raise CalendarError(msg)
        parsed.append((start, end, index))

    parsed.sort()
    for (_, previous_end, previous_index), (start, _, index) in zip(parsed, parsed[1:]):
        if start < previous_end:
            msg = (
                f"{key}[{index}] overlaps {key}[{previous_index}]; merge overlapping"
                " intervals into one"
            )
            raise CalendarError(msg)
    return tuple((start, end) for start, end, _ in parsed)


def _parse_clock_time(key: str, value: object) -> int:
    """Return a 'HH:MM' time as minutes after midnight, allowing '24:00'."""
    match = _TIME_PATTERN.match(value) if isinstance(value, str) else None
    if match is not None:
        hour, minute = int(match[1]), int(match[2])
        if (hour < 24 and minute < 60) or (hour, minute) == (24, 0):
            return hour * 60 + minute
    msg = (
        f"{key} has invalid time {value!r}; use 'HH:MM' from '00:00' to '23:59',"
        " or '24:00' as an end"
    )
    raise CalendarError(msg)


def _parse_holidays(value: object) -> frozenset[date]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        msg = f"calendar key 'holidays' must be a list of 'YYYY-MM-DD' dates; got {value!r}"
        raise CalendarError(msg)
    holidays: set[date] = set()
    for index, item in enumerate(value):
        holiday = None
        if isinstance(item, str) and _DATE_PATTERN.match(item):
            try:
                holiday = date.fromisoformat(item)
            except ValueError:
                holiday = None
        if holiday is None:
            msg = f"holidays[{index}] has invalid date {item!r}; use 'YYYY-MM-DD'"
            raise CalendarError(msg)
        holidays.add(holiday)
    return frozenset(holidays)


def _format_minute(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


# Argument checks and conversions


def _to_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        msg = (
            f"{name} must be a timezone-aware datetime, got naive {value.isoformat()};"
            " attach a tzinfo such as datetime.timezone.utc"
        )
        raise ValueError(msg)
    return value.astimezone(timezone.utc)


def _minutes_to_timedelta(minutes: float) -> timedelta:
    if not math.isfinite(minutes) or minutes < 0:
        msg = f"minutes must be a finite number >= 0, got {minutes!r}"
        raise ValueError(msg)
    return timedelta(minutes=minutes)


def _to_minutes(duration: timedelta) -> float:
    return duration / _ONE_MINUTE
