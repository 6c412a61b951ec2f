"""The reporting period of a page, from its query string, and the period before it.

A period is a calendar month (``?period=2016-05``), a range of whole UTC days
(``?since=2016-03-01&until=2016-03-31``, both days included), or all data
(``?period=all``). Without a choice, a page shows the default month: the
latest month that is busier than a quarter of the busiest month. The month of
the latest ticket is left out when other months exist, because that month is
usually still running. Imported history then opens on a month with data
rather than on an empty current month.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

UTC = timezone.utc

ALL = "all"

# A month qualifies as the default when it has at least this share of the busiest month's tickets.
DEFAULT_MONTH_MIN_SHARE = 0.25

# Trend charts cover at least this many weeks, ending with the period.
TREND_WEEKS = 13

# Periods must lie within these years, and a custom range may span at most
# MAX_RANGE_YEARS. The bounds keep the previous period, the trend weeks and the
# per-period queries away from the limits of ``datetime`` (years 1 and 9999)
# and keep a page's work to a few thousand weeks.
FIRST_YEAR = 1970
LAST_YEAR = 2100
MAX_RANGE_YEARS = 30
MAX_RANGE_DAYS = 10_957
FIRST_DAY = date(FIRST_YEAR, 1, 1)
LAST_DAY = date(LAST_YEAR, 12, 31)
# The instants between which the pages read data, as aware datetimes.
EARLIEST = datetime.combine(FIRST_DAY, time(), UTC)
LATEST = datetime.combine(LAST_DAY + timedelta(days=1), time(), UTC)

# ASCII digits only: int() and date.fromisoformat() also read other scripts'
# digits and forms such as 20160301 or 2016-W09-2.
MONTH_FORM = re.compile(r"[0-9]{4}-[0-9]{2}")
DAY_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class PeriodError(ValueError):
    """Error for an invalid period in the query string.

    Its message names the invalid value and the accepted forms.
    """


@dataclass(frozen=True)
class Period:
    """A half-open interval ``[since, until)`` of UTC days, or all data when both are None."""

    key: str
    label: str
    since: date | None
    until: date | None

    @property
    def since_time(self) -> datetime | None:
        return None if self.since is None else datetime.combine(self.since, time(), UTC)

    @property
    def until_time(self) -> datetime | None:
        return None if self.until is None else datetime.combine(self.until, time(), UTC)

    @property
    def last_day(self) -> date | None:
        return None if self.until is None else self.until - timedelta(days=1)

    @property
    def is_month(self) -> bool:
        return self.key != ALL and len(self.key) == 7

    def query(self) -> dict[str, str]:
        """Return the query-string arguments that select this period."""
        if self.key == ALL or self.is_month:
            return {"period": self.key}
        assert self.since is not None and self.until is not None
        return {"since": self.since.isoformat(), "until": (self.until - timedelta(days=1)).isoformat()}

    def previous(self) -> Period | None:
        """Return the period of the same length just before this one (the previous month for a month)."""
        if self.since is None or self.until is None:
            return None
        if self.is_month:
            return month_period(month_key(self.since - timedelta(days=1)))
        length = self.until - self.since
        return day_range(self.since - length, self.since)

    def trend_window(self, first_week: date | None = None, last_week: date | None = None) -> list[date]:
        """Return the Mondays of the weeks a trend chart shows.

        The weeks end with the one holding the period's last day and go back at
        least ``TREND_WEEKS`` weeks, or to the period's first week if that is
        earlier. For all data, pass the first and last week that have data.
        """
        if self.since is None or self.until is None:
            if first_week is None or last_week is None:
                return []
            start, end = monday_of(first_week), monday_of(last_week)
        else:
            end = monday_of(self.until - timedelta(days=1))
            start = min(monday_of(self.since), end - timedelta(weeks=TREND_WEEKS - 1))
        weeks = []
        week = start
        while week <= end:
            weeks.append(week)
            week += timedelta(weeks=1)
        return weeks


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_period(key: str) -> Period:
    try:
        if not MONTH_FORM.fullmatch(key):
            raise ValueError(key)
        first = date(int(key[:4]), int(key[5:7]), 1)
    except ValueError:
        msg = f"period {key!r} is invalid; use a month such as 2016-05, or 'all'"
        raise PeriodError(msg) from None
    if not FIRST_YEAR <= first.year <= LAST_YEAR:
        msg = f"period {key!r} is out of range; use a month from {FIRST_YEAR}-01 to {LAST_YEAR}-12, or 'all'"
        raise PeriodError(msg)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period(key, first.strftime("%B %Y"), first, following)


def day_range(since: date, until: date) -> Period:
    """Build the period of the days from ``since`` to the day before ``until``."""
    last = until - timedelta(days=1)
    key = f"{since.isoformat()}..{last.isoformat()}"
    label = since.isoformat() if since == last else f"{since.isoformat()} to {last.isoformat()}"
    return Period(key, label, since, until)


ALL_DATA = Period(ALL, "All data", None, None)


def parse_day(name: str, text: str) -> date:
    try:
        if not DAY_FORM.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        msg = f"{name} {text!r} is invalid; use a date such as 2016-03-01"
        raise PeriodError(msg) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        msg = f"{name} {text!r} is out of range; use a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
        raise PeriodError(msg)
    return day


def choose_period(arguments: Mapping[str, str], months: Sequence[tuple[str, int]]) -> Period:
    """Return the period named by the query string, or the default month.

    ``months`` lists ``(month, tickets opened)`` pairs, oldest first, as the KPI
    query grouped by month returns them.
    """
    since_text = arguments.get("since", "").strip()
    until_text = arguments.get("until", "").strip()
    if since_text or until_text:
        if not (since_text and until_text):
            msg = "a custom period needs both since and until, such as since=2016-03-01&until=2016-03-31"
            raise PeriodError(msg)
        since = parse_day("since", since_text)
        last = parse_day("until", until_text)
        if last < since:
            msg = f"until {until_text!r} is before since {since_text!r}; swap them"
            raise PeriodError(msg)
        if (last - since).days + 1 > MAX_RANGE_DAYS:
            msg = (
                f"until {until_text!r} is too far after since {since_text!r}; a range covers at most "
                f"{MAX_RANGE_DAYS} days ({MAX_RANGE_YEARS} years), so narrow it or use period=all"
            )
            raise PeriodError(msg)
        return day_range(since, last + timedelta(days=1))

    key = arguments.get("period", "").strip()
    if key == ALL:
        return ALL_DATA
    if key:
        return month_period(key)
    return month_period(default_month(months)) if months else ALL_DATA


def default_month(months: Sequence[tuple[str, int]]) -> str:
    """Pick the default month from ``(month, tickets)`` pairs, oldest first; see the module docstring."""
    candidates = list(months[:-1]) if len(months) > 1 else list(months)
    busiest = max(count for _, count in candidates)
    for month, count in reversed(candidates):
        if count >= DEFAULT_MONTH_MIN_SHARE * busiest:
            return month
    return candidates[-1][0]
