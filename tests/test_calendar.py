"""Tests for projections.calendar.BusinessCalendar.

Expected values are worked out by hand in the comments. Offsets used:
Europe/Berlin is CET (UTC+1) in winter and CEST (UTC+2) in summer, and
America/New_York is EST (UTC-5) in winter and EDT (UTC-4) in summer. The 2024
changes: Berlin springs forward on Sunday 31 March (02:00 CET -> 03:00 CEST) and
falls back on Sunday 27 October (03:00 CEST -> 02:00 CET). New York springs forward
on Sunday 10 March (02:00 EST -> 03:00 EDT) and falls back on Sunday 3 November
(02:00 EDT -> 01:00 EST).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.calendar import MAX_SEARCH_DAYS, BusinessCalendar, CalendarError

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

WORKDAYS = ("mon", "tue", "wed", "thu", "fri")


def office_hours(zone: str, start: str, end: str, **extra: object) -> BusinessCalendar:
    """Build a calendar open from start to end on Monday to Friday."""
    spec = {"timezone": zone, "hours": {day: [[start, end]] for day in WORKDAYS}}
    spec.update(extra)
    return BusinessCalendar.from_dict(spec)


def sunday_only(zone: str, *intervals: list[str]) -> BusinessCalendar:
    return BusinessCalendar.from_dict({"timezone": zone, "hours": {"sun": list(intervals)}})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# 24x7


def test_24x7_add_counts_every_minute() -> None:
    calendar = BusinessCalendar.from_dict(None)

    # Saturday 2024-03-02: weekends count too.
    assert calendar.add(utc(2024, 3, 2, 10, 0), 5) == utc(2024, 3, 2, 10, 5)


def test_24x7_between_counts_every_minute() -> None:
    calendar = BusinessCalendar.from_dict(None)

    # Two full days plus 30 minutes: 2 * 1440 + 30.
    assert calendar.between(utc(2024, 3, 2, 10, 0), utc(2024, 3, 4, 10, 30)) == 2910


def test_24x7_add_returns_utc() -> None:
    calendar = BusinessCalendar.from_dict(None)
    start = datetime(2024, 3, 2, 10, 0, tzinfo=BERLIN)

    due = calendar.add(start, 5)

    # 10:00 CET is 09:00 UTC.
    assert due == utc(2024, 3, 2, 9, 5)
    assert due.tzinfo is UTC


# Office hours in UTC. 2024-03-04 is a Monday.


def test_add_carries_over_to_next_day() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    # 60 minutes on Monday 17:00-18:00, the other 180 from Tuesday 08:00.
    assert calendar.add(utc(2024, 3, 4, 17, 0), 240) == utc(2024, 3, 5, 11, 0)


def test_add_180_minutes_from_monday_afternoon() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    # 60 minutes on Monday, 120 from Tuesday 08:00.
    assert calendar.add(utc(2024, 3, 4, 17, 0), 180) == utc(2024, 3, 5, 10, 0)


def test_add_ending_at_close_returns_close() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    assert calendar.add(utc(2024, 3, 4, 17, 0), 60) == utc(2024, 3, 4, 18, 0)


def test_add_before_opening_starts_at_opening() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    assert calendar.add(utc(2024, 3, 4, 6, 0), 30) == utc(2024, 3, 4, 8, 30)


def test_add_from_weekend_starts_monday() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    # Saturday 2024-03-02 12:00: nothing counts until Monday 08:00.
    assert calendar.add(utc(2024, 3, 2, 12, 0), 30) == utc(2024, 3, 4, 8, 30)


def test_add_zero_returns_start_outside_hours() -> None:
    calendar = office_hours("Europe/Berlin", "08:00", "18:00")
    saturday_noon = datetime(2024, 3, 2, 12, 0, tzinfo=BERLIN)

    due = calendar.add(saturday_noon, 0)

    # 12:00 CET is 11:00 UTC.
    assert due == utc(2024, 3, 2, 11, 0)
    assert due.tzinfo is UTC


def test_add_keeps_fractional_minutes() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    # 1.5 minutes = 90 s: 30 s before Monday's close, 60 s from Tuesday 08:00.
    assert calendar.add(utc(2024, 3, 4, 17, 59, 30), 1.5) == utc(2024, 3, 5, 8, 1, 0)


def test_between_keeps_seconds() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    # 30 s on Monday and 45 s on Tuesday: 75 s = 1.25 minutes.
    assert calendar.between(utc(2024, 3, 4, 17, 59, 30), utc(2024, 3, 5, 8, 0, 45)) == 1.25


def test_add_accepts_start_in_other_zone() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")
    # Tuesday 02:00 in Tokyo (UTC+9) is Monday 17:00 UTC.
    start = datetime(2024, 3, 5, 2, 0, tzinfo=ZoneInfo("Asia/Tokyo"))

    due = calendar.add(start, 240)

    assert due == utc(2024, 3, 5, 11, 0)
    assert due.tzinfo is UTC


def test_add_skips_lunch_break() -> None:
    calendar = BusinessCalendar.from_dict(
        {"timezone": "UTC", "hours": {"mon": [["08:00", "12:00"], ["13:00", "17:00"]]}}
    )

    # 30 minutes before lunch (11:30-12:00), 30 after it (13:00-13:30).
    assert calendar.add(utc(2024, 3, 4, 11, 30), 60) == utc(2024, 3, 4, 13, 30)


def test_between_excludes_lunch_break() -> None:
    calendar = BusinessCalendar.from_dict(
        {"timezone": "UTC", "hours": {"mon": [["08:00", "12:00"], ["13:00", "17:00"]]}}
    )

    # 09:00-12:00 is 180 minutes, 13:00-14:00 is 60.
    assert calendar.between(utc(2024, 3, 4, 9, 0), utc(2024, 3, 4, 14, 0)) == 240


def test_between_end_before_start_is_zero() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    assert calendar.between(utc(2024, 3, 4, 12, 0), utc(2024, 3, 4, 10, 0)) == 0


def test_between_closed_range_is_zero() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    # Friday 18:00 to Monday 08:00 has no business time.
    assert calendar.between(utc(2024, 3, 1, 18, 0), utc(2024, 3, 4, 8, 0)) == 0


# Holidays. 2024-12-25 is a Wednesday.


def test_add_skips_holiday() -> None:
    calendar = office_hours("UTC", "08:00", "18:00", holidays=["2024-12-25"])

    # 60 minutes on Tuesday 17:00-18:00, none on Wednesday, 60 from Thursday 08:00.
    assert calendar.add(utc(2024, 12, 24, 17, 0), 120) == utc(2024, 12, 26, 9, 0)


def test_between_skips_holiday() -> None:
    calendar = office_hours("UTC", "08:00", "18:00", holidays=["2024-12-25"])

    # Tuesday 17:00-18:00 and Thursday 08:00-09:00.
    assert calendar.between(utc(2024, 12, 24, 17, 0), utc(2024, 12, 26, 9, 0)) == 120


def test_holiday_is_a_local_date() -> None:
    calendar = BusinessCalendar.from_dict(
        {
            "timezone": "America/New_York",
            "hours": {day: [["00:00", "24:00"]] for day in WORKDAYS},
            "holidays": ["2024-12-25"],
        }
    )

    # The holiday is 2024-12-25 00:00-24:00 EST, i.e. 05:00 UTC to 05:00 UTC
    # the next day. 2024-12-25 00:00-05:00 UTC is still Tuesday in New York.
    assert calendar.between(utc(2024, 12, 25, 0, 0), utc(2024, 12, 26, 0, 0)) == 300


# Office hours in Europe/Berlin across a weekend with no DST change.
# 2024-03-01 is a Friday, and both days are CET (UTC+1).


def test_add_over_weekend_in_berlin() -> None:
    calendar = office_hours("Europe/Berlin", "08:00", "18:00")
    friday = datetime(2024, 3, 1, 14, 0, tzinfo=BERLIN)

    # 240 minutes on Friday 14:00-18:00, the other 360 from Monday 08:00,
    # so Monday 14:00 CET = 13:00 UTC.
    assert calendar.add(friday, 600) == utc(2024, 3, 4, 13, 0)


def test_between_over_weekend_in_berlin() -> None:
    calendar = office_hours("Europe/Berlin", "08:00", "18:00")
    friday = datetime(2024, 3, 1, 16, 0, tzinfo=BERLIN)
    monday = datetime(2024, 3, 4, 10, 0, tzinfo=BERLIN)

    # Friday 16:00-18:00 and Monday 08:00-10:00.
    assert calendar.between(friday, monday) == 240


# DST weekends with office hours: the Monday opening moves by one hour in UTC.


def test_add_across_spring_forward_in_berlin() -> None:
    calendar = office_hours("Europe/Berlin", "08:00", "18:00")
    friday = datetime(2024, 3, 29, 17, 0, tzinfo=BERLIN)

    # Friday 17:00-18:00 CET gives 60 minutes. Monday 2024-04-01 opens at
    # 08:00 CEST = 06:00 UTC, so 60 more minutes end at 07:00 UTC. A fixed
    # 24-hour step from Friday's 07:00 UTC opening would wrongly give 08:00 UTC.
    assert calendar.add(friday, 120) == utc(2024, 4, 1, 7, 0)


def test_add_across_fall_back_in_berlin() -> None:
    calendar = office_hours("Europe/Berlin", "08:00", "18:00")
    friday = datetime(2024, 10, 25, 17, 0, tzinfo=BERLIN)

    # Friday 17:00-18:00 CEST gives 60 minutes. Monday 2024-10-28 opens at
    # 08:00 CET = 07:00 UTC, so 60 more minutes end at 08:00 UTC.
    assert calendar.add(friday, 120) == utc(2024, 10, 28, 8, 0)


def test_add_across_spring_forward_in_new_york() -> None:
    calendar = office_hours("America/New_York", "09:00", "17:00")
    friday = datetime(2024, 3, 8, 16, 0, tzinfo=NEW_YORK)

    # Friday 16:00-17:00 EST gives 60 minutes. Monday 2024-03-11 opens at
    # 09:00 EDT = 13:00 UTC, so 60 more minutes end at 14:00 UTC.
    assert calendar.add(friday, 120) == utc(2024, 3, 11, 14, 0)


def test_add_across_fall_back_in_new_york() -> None:
    calendar = office_hours("America/New_York", "09:00", "17:00")
    friday = datetime(2024, 11, 1, 16, 0, tzinfo=NEW_YORK)

    # Friday 16:00-17:00 EDT gives 60 minutes. Monday 2024-11-04 opens at
    # 09:00 EST = 14:00 UTC, so 60 more minutes end at 15:00 UTC.
    assert calendar.add(friday, 120) == utc(2024, 11, 4, 15, 0)


def test_between_across_spring_forward_in_berlin() -> None:
    calendar = office_hours("Europe/Berlin", "08:00", "18:00")
    friday = datetime(2024, 3, 29, 16, 0, tzinfo=BERLIN)
    monday = datetime(2024, 4, 1, 10, 0, tzinfo=BERLIN)

    # Friday 16:00-18:00 CET and Monday 08:00-10:00 CEST.
    assert calendar.between(friday, monday) == 240


# DST weekends with whole local days open: the Sunday is 23 or 25 hours long.
# Each case runs from Saturday 00:00 local to Monday 00:00 local.

ALL_DAY = {day: [["00:00", "24:00"]] for day in ("sat", "sun")}


@pytest.mark.parametrize(
    ("zone", "saturday", "monday", "expected"),
    [
        # Saturday 24 h + Sunday 23 h = 47 h.
        ("Europe/Berlin", date(2024, 3, 30), date(2024, 4, 1), 47 * 60),
        # Saturday 24 h + Sunday 25 h = 49 h.
        ("Europe/Berlin", date(2024, 10, 26), date(2024, 10, 28), 49 * 60),
        ("America/New_York", date(2024, 3, 9), date(2024, 3, 11), 47 * 60),
        ("America/New_York", date(2024, 11, 2), date(2024, 11, 4), 49 * 60),
    ],
)
def test_between_whole_days_across_dst(
    zone: str, saturday: date, monday: date, expected: int
) -> None:
    calendar = BusinessCalendar.from_dict({"timezone": zone, "hours": ALL_DAY})
    tz = ZoneInfo(zone)
    start = datetime.combine(saturday, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(monday, datetime.min.time(), tzinfo=tz)

    assert calendar.between(start, end) == expected


# Sunday hours whose ends fall into the DST gap or the repeated hour. Each case
# counts one Sunday, from Saturday 00:00 UTC to Tuesday 00:00 UTC.


@pytest.mark.parametrize(
    ("zone", "interval", "sunday", "expected"),
    [
        # 01:00 CET = 00:00 UTC to 04:00 CEST = 02:00 UTC.
        ("Europe/Berlin", ["01:00", "04:00"], date(2024, 3, 31), 120),
        # 01:00 CEST = 23:00 UTC (Saturday) to 04:00 CET = 03:00 UTC: the
        # repeated hour is real time and counts.
        ("Europe/Berlin", ["01:00", "04:00"], date(2024, 10, 27), 240),
        # 02:30 does not exist and uses CET: 01:30 UTC. 05:00 CEST = 03:00 UTC.
        ("Europe/Berlin", ["02:30", "05:00"], date(2024, 3, 31), 90),
        # 02:30 occurs twice, fold=0 takes the first (CEST): 00:30 UTC.
        # 05:00 CET = 04:00 UTC.
        ("Europe/Berlin", ["02:30", "05:00"], date(2024, 10, 27), 210),
        # 01:30 EST = 06:30 UTC to 03:00 EDT = 07:00 UTC.
        ("America/New_York", ["01:30", "03:00"], date(2024, 3, 10), 30),
        # 01:30 occurs twice, fold=0 takes the first (EDT): 05:30 UTC.
        # 03:00 EST = 08:00 UTC.
        ("America/New_York", ["01:30", "03:00"], date(2024, 11, 3), 150),
        # 02:30 does not exist and uses EST: 07:30 UTC. 04:00 EDT = 08:00 UTC.
        ("America/New_York", ["02:30", "04:00"], date(2024, 3, 10), 30),
    ],
)
def test_between_interval_touching_dst_change(
    zone: str, interval: list[str], sunday: date, expected: int
) -> None:
    calendar = sunday_only(zone, interval)
    saturday = datetime.combine(sunday - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    tuesday = saturday + timedelta(days=3)

    assert calendar.between(saturday, tuesday) == expected


def test_add_on_spring_forward_sunday_in_berlin() -> None:
    calendar = sunday_only("Europe/Berlin", ["01:00", "04:00"])
    saturday = datetime(2024, 3, 30, 12, 0, tzinfo=BERLIN)

    # Opening 01:00 CET = 00:00 UTC, plus 90 minutes: 01:30 UTC (03:30 CEST).
    assert calendar.add(saturday, 90) == utc(2024, 3, 31, 1, 30)


def test_add_on_fall_back_sunday_in_new_york() -> None:
    calendar = sunday_only("America/New_York", ["01:00", "04:00"])
    saturday = datetime(2024, 11, 2, 12, 0, tzinfo=NEW_YORK)

    # Opening 01:00 EDT = 05:00 UTC, plus 90 minutes: 06:30 UTC, which is
    # 01:30 EST, the second pass through the repeated hour.
    assert calendar.add(saturday, 90) == utc(2024, 11, 3, 6, 30)


def test_interval_inside_gap_shifts_forward() -> None:
    calendar = sunday_only("Europe/Berlin", ["02:00", "02:30"])
    saturday = datetime(2024, 3, 30, 12, 0, tzinfo=BERLIN)

    # 02:00-02:30 does not exist on 2024-03-31. Both ends use CET, giving
    # 01:00-01:30 UTC (03:00-03:30 CEST), so 10 minutes end at 01:10 UTC.
    assert calendar.add(saturday, 10) == utc(2024, 3, 31, 1, 10)


def test_intervals_overlapping_after_gap_count_once() -> None:
    calendar = sunday_only("Europe/Berlin", ["01:00", "02:30"], ["03:00", "04:00"])
    saturday = utc(2024, 3, 30, 0, 0)
    tuesday = utc(2024, 4, 2, 0, 0)

    # 01:00 CET-02:30 (gap, CET) is 00:00-01:30 UTC. 03:00-04:00 CEST is
    # 01:00-02:00 UTC. The union is 00:00-02:00 UTC: 120 minutes, not 150.
    assert calendar.between(saturday, tuesday) == 120


def test_interval_collapsed_by_gap_is_empty() -> None:
    calendar = sunday_only("Europe/Berlin", ["02:30", "03:10"])
    saturday = datetime(2024, 3, 30, 12, 0, tzinfo=BERLIN)

    # On 2024-03-31, 02:30 uses CET (01:30 UTC) but 03:10 CEST is 01:10 UTC, so
    # the interval is empty. The next Sunday, 2024-04-07, is CEST throughout:
    # 02:30 CEST = 00:30 UTC, plus 10 minutes.
    assert calendar.add(saturday, 10) == utc(2024, 4, 7, 0, 40)


def test_between_fold_across_midnight() -> None:
    calendar = BusinessCalendar.from_dict(
        {"timezone": "America/St_Johns", "hours": {"sat": [["00:00", "24:00"]], "sun": [["00:00", "24:00"]]}}
    )

    # At 2010-11-07 00:01 NDT (UTC-2:30), which is 02:31 UTC, clocks went back
    # to 2010-11-06 23:01 NST (UTC-3:30). 02:00-03:00 UTC lies in open
    # Saturday and Sunday time, so all 60 minutes count, although the end,
    # 23:30 NST, shows the Saturday date again.
    assert calendar.between(utc(2010, 11, 7, 2, 0), utc(2010, 11, 7, 3, 0)) == 60


def test_add_late_evening_west_of_utc() -> None:
    calendar = BusinessCalendar.from_dict(
        {"timezone": "America/New_York", "hours": {"sun": [["00:00", "24:00"]]}}
    )
    # Sunday 2024-03-03 22:00 EST is already Monday 03:00 in UTC.
    start = datetime(2024, 3, 3, 22, 0, tzinfo=NEW_YORK)

    # The count starts at once on Sunday: 60 minutes end at 23:00 EST = 04:00 UTC.
    assert calendar.add(start, 60) == utc(2024, 3, 4, 4, 0)


# Argument checks


def test_add_naive_start_raises() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    with pytest.raises(ValueError, match="start must be a timezone-aware datetime"):
        calendar.add(datetime(2024, 3, 4, 9, 0), 10)


def test_between_naive_start_raises() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    with pytest.raises(ValueError, match="start must be a timezone-aware datetime"):
        calendar.between(datetime(2024, 3, 4, 9, 0), utc(2024, 3, 4, 10, 0))


def test_between_naive_end_raises() -> None:
    calendar = BusinessCalendar.from_dict(None)

    with pytest.raises(ValueError, match="end must be a timezone-aware datetime"):
        calendar.between(utc(2024, 3, 4, 9, 0), datetime(2024, 3, 4, 10, 0))


@pytest.mark.parametrize("minutes", [-1, math.nan, math.inf])
def test_add_invalid_minutes_raises(minutes: float) -> None:
    calendar = office_hours("UTC", "08:00", "18:00")

    with pytest.raises(ValueError, match="minutes must be a finite number >= 0"):
        calendar.add(utc(2024, 3, 4, 9, 0), minutes)


def test_add_beyond_search_limit_raises() -> None:
    calendar = office_hours("UTC", "08:00", "18:00")
    # Ten years contain about 2610 weekdays * 600 minutes = 1.57 million minutes.
    ten_million = 10_000_000

    with pytest.raises(CalendarError, match=f"{MAX_SEARCH_DAYS} local days"):
        calendar.add(utc(2024, 3, 4, 9, 0), ten_million)


def test_add_with_no_open_day_raises() -> None:
    first_monday = date(2024, 3, 4)
    mondays = [first_monday + timedelta(weeks=week) for week in range(MAX_SEARCH_DAYS // 7 + 2)]
    calendar = BusinessCalendar.from_dict(
        {
            "timezone": "UTC",
            "hours": {"mon": [["08:00", "18:00"]]},
            "holidays": [monday.isoformat() for monday in mondays],
        }
    )

    with pytest.raises(CalendarError, match="contain only 0 business minutes"):
        calendar.add(utc(2024, 3, 4, 9, 0), 1)


# Spec validation


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "calendar spec must be a dict"),
        ({"timezone": "UTC", "hours": {"mon": [["08:00", "18:00"]]}, "tz": "UTC"},
         "unknown calendar key 'tz'"),
        ({"hours": {"mon": [["08:00", "18:00"]]}}, "'timezone' is missing"),
        ({"timezone": 1, "hours": {"mon": [["08:00", "18:00"]]}},
         "'timezone' must be an IANA time zone name"),
        ({"timezone": "Mars/Olympus", "hours": {"mon": [["08:00", "18:00"]]}},
         "unknown time zone 'Mars/Olympus'"),
        ({"timezone": "UTC"}, "'hours' is missing"),
        ({"timezone": "UTC", "hours": [["08:00", "18:00"]]},
         r"'hours' must be a mapping of weekday \('mon' to 'sun'\)"),
        ({"timezone": "UTC", "hours": {"monday": [["08:00", "18:00"]]}},
         "unknown weekday 'monday'; use one of 'mon', 'tue'"),
        ({"timezone": "UTC", "hours": {"mon": "08:00-18:00"}},
         r"hours\['mon'\] must be a list of \['HH:MM', 'HH:MM'\] intervals"),
        ({"timezone": "UTC", "hours": {"mon": [["08:00"]]}},
         r"hours\['mon'\]\[0\] must be a pair"),
        ({"timezone": "UTC", "hours": {"mon": [["8:00", "18:00"]]}},
         r"hours\['mon'\]\[0\] has invalid time '8:00'; use 'HH:MM'"),
        ({"timezone": "UTC", "hours": {"mon": [["08:00", "18:60"]]}},
         "invalid time '18:60'"),
        ({"timezone": "UTC", "hours": {"mon": [["08:00", "24:30"]]}},
         "invalid time '24:30'"),
        ({"timezone": "UTC", "hours": {"mon": [["24:00", "24:00"]]}},
         "starts at '24:00'"),
        ({"timezone": "UTC", "hours": {"mon": [["22:00", "06:00"]]}},
         "split an interval that crosses midnight"),
        ({"timezone": "UTC", "hours": {"mon": [["10:00", "10:00"]]}},
         "not after its start"),
        ({"timezone": "UTC", "hours": {"mon": [["12:00", "14:00"], ["08:00", "13:00"]]}},
         r"hours\['mon'\]\[0\] overlaps hours\['mon'\]\[1\]"),
        ({"timezone": "UTC", "hours": {}}, "'hours' must contain at least one interval"),
        ({"timezone": "UTC", "hours": {"mon": [], "sun": []}},
         "'hours' must contain at least one interval"),
        ({"timezone": "UTC", "hours": {"mon": [["08:00", "18:00"]]}, "holidays": "2024-12-25"},
         "'holidays' must be a list of 'YYYY-MM-DD' dates"),
        ({"timezone": "UTC", "hours": {"mon": [["08:00", "18:00"]]}, "holidays": ["2024-02-30"]},
         r"holidays\[0\] has invalid date '2024-02-30'; use 'YYYY-MM-DD'"),
        ({"timezone": "UTC", "hours": {"mon": [["08:00", "18:00"]]}, "holidays": ["20241225"]},
         r"holidays\[0\] has invalid date '20241225'"),
        # Arabic-Indic digits match a Unicode \d and int() reads them.
        ({"timezone": "UTC", "hours": {"mon": [["\u0660\u0668:00", "18:00"]]}},
         r"hours\['mon'\]\[0\] has invalid time"),
    ],
)
def test_from_dict_invalid_spec_raises(spec: object, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.from_dict(spec)


def test_calendar_error_is_value_error() -> None:
    assert issubclass(CalendarError, ValueError)


def test_adjacent_intervals_are_valid() -> None:
    calendar = BusinessCalendar.from_dict(
        {"timezone": "UTC", "hours": {"mon": [["08:00", "12:00"], ["12:00", "18:00"]]}}
    )

    assert calendar.add(utc(2024, 3, 4, 11, 30), 60) == utc(2024, 3, 4, 12, 30)


def test_interval_may_end_at_midnight() -> None:
    calendar = BusinessCalendar.from_dict(
        {"timezone": "UTC", "hours": {"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]]}}
    )

    # Monday 23:00-24:00 and Tuesday 00:00-01:00 form one stretch.
    assert calendar.add(utc(2024, 3, 4, 23, 0), 120) == utc(2024, 3, 5, 1, 0)


# Serialisation


def test_to_dict_round_trips() -> None:
    spec = {
        "timezone": "Europe/Berlin",
        "hours": {"tue": [["13:00", "17:00"], ["08:00", "12:00"]], "sat": [["10:00", "24:00"]]},
        "holidays": ["2024-12-26", "2024-12-25"],
    }
    calendar = BusinessCalendar.from_dict(spec)

    # Intervals and holidays come back sorted, and every weekday is listed.
    assert calendar.to_dict() == {
        "timezone": "Europe/Berlin",
        "hours": {
            "mon": [],
            "tue": [["08:00", "12:00"], ["13:00", "17:00"]],
            "wed": [],
            "thu": [],
            "fri": [],
            "sat": [["10:00", "24:00"]],
            "sun": [],
        },
        "holidays": ["2024-12-25", "2024-12-26"],
    }
    assert BusinessCalendar.from_dict(calendar.to_dict()) == calendar


def test_24x7_to_dict_is_none() -> None:
    calendar = BusinessCalendar.from_dict(None)

    assert calendar.to_dict() is None
    assert calendar.is_24x7


def test_equal_specs_give_equal_calendars() -> None:
    first = office_hours("UTC", "08:00", "18:00")
    second = office_hours("UTC", "08:00", "18:00")

    assert first == second
    assert hash(first) == hash(second)


def test_different_holidays_give_unequal_calendars() -> None:
    plain = office_hours("UTC", "08:00", "18:00")
    with_holiday = office_hours("UTC", "08:00", "18:00", holidays=["2024-12-25"])

    assert plain != with_holiday


# Properties. Starts are drawn near DST changes as well as anywhere in a range.

PROPERTY_CALENDARS = [
    BusinessCalendar.from_dict(None),
    office_hours("Europe/Berlin", "08:00", "18:00", holidays=["2024-03-29", "2024-12-25"]),
    BusinessCalendar.from_dict(
        {
            "timezone": "America/New_York",
            "hours": {
                **{day: [["09:00", "12:30"], ["13:15", "17:00"]] for day in WORKDAYS},
                "sun": [["00:00", "24:00"]],
            },
            "holidays": ["2024-11-04"],
        }
    ),
    sunday_only("Europe/Berlin", ["01:00", "02:30"], ["03:00", "04:00"]),
    sunday_only("America/New_York", ["01:30", "03:00"]),
]

DST_SUNDAYS = [date(2024, 3, 31), date(2024, 10, 27), date(2024, 3, 10), date(2024, 11, 3)]

calendars = st.sampled_from(PROPERTY_CALENDARS)
start_instants = st.one_of(
    st.datetimes(
        min_value=datetime(2023, 1, 1),
        max_value=datetime(2026, 12, 31),
        timezones=st.just(UTC),
    ),
    st.builds(
        lambda sunday, offset: datetime.combine(sunday, datetime.min.time(), tzinfo=UTC)
        + timedelta(microseconds=offset),
        st.sampled_from(DST_SUNDAYS),
        st.integers(min_value=-3 * 86_400_000_000, max_value=3 * 86_400_000_000),
    ),
)
target_minutes = st.floats(min_value=0, max_value=20_000, allow_nan=False)


@settings(deadline=None)
@given(calendar=calendars, start=start_instants, minutes=target_minutes)
def test_between_inverts_add(calendar: BusinessCalendar, start: datetime, minutes: float) -> None:
    due = calendar.add(start, minutes)

    # add() rounds to whole microseconds, and a microsecond is 1/60e6 minutes.
    assert calendar.between(start, due) == pytest.approx(minutes, rel=0, abs=1e-7)


@settings(deadline=None)
@given(
    calendar=calendars,
    start=start_instants,
    first=target_minutes,
    second=target_minutes,
)
def test_add_is_monotonic(
    calendar: BusinessCalendar, start: datetime, first: float, second: float
) -> None:
    smaller, larger = sorted((first, second))

    assert calendar.add(start, smaller) <= calendar.add(start, larger)


@settings(deadline=None)
@given(
    calendar=calendars,
    start=start_instants,
    first_gap=st.integers(min_value=0, max_value=5 * 1440),
    second_gap=st.integers(min_value=0, max_value=5 * 1440),
)
def test_between_is_additive(
    calendar: BusinessCalendar, start: datetime, first_gap: int, second_gap: int
) -> None:
    middle = start + timedelta(minutes=first_gap)
    end = middle + timedelta(minutes=second_gap)

    total = calendar.between(start, end)

    assert total == pytest.approx(
        calendar.between(start, middle) + calendar.between(middle, end), rel=0, abs=1e-9
    )


# A second method for between(): count whole minutes one by one by their local
# wall-clock time. It agrees with the interval method only for calendars whose
# opening and closing times avoid the hour a DST change skips or repeats, so
# these calendars keep clear of 01:00-03:00.
ORACLE_CALENDARS = [
    ("Europe/Berlin", {day: [["08:00", "18:00"]] for day in WORKDAYS}, ["2024-10-28"]),
    (
        "America/New_York",
        {"sat": [["00:00", "24:00"]], "sun": [["04:00", "12:30"], ["13:00", "24:00"]]},
        ["2024-03-09"],
    ),
    ("Europe/Berlin", {"sun": [["00:00", "24:00"]], "mon": [["00:00", "00:45"]]}, []),
]


def count_open_minutes(
    zone: str, hours: dict[str, list[list[str]]], holidays: list[str], start: datetime, minutes: int
) -> int:
    tz = ZoneInfo(zone)
    weekdays = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    open_minutes = 0
    for step in range(minutes):
        local = (start + timedelta(minutes=step)).astimezone(tz)
        if local.date().isoformat() in holidays:
            continue
        wall_clock = local.strftime("%H:%M")
        for opens, closes in hours.get(weekdays[local.weekday()], []):
            if opens <= wall_clock < closes:
                open_minutes += 1
    return open_minutes


@settings(deadline=None, max_examples=60)
@given(
    calendar_spec=st.sampled_from(ORACLE_CALENDARS),
    sunday=st.sampled_from(DST_SUNDAYS),
    offset_minutes=st.integers(min_value=-2 * 1440, max_value=2 * 1440),
    length_minutes=st.integers(min_value=0, max_value=4 * 1440),
)
def test_between_matches_minute_count(
    calendar_spec: tuple[str, dict[str, list[list[str]]], list[str]],
    sunday: date,
    offset_minutes: int,
    length_minutes: int,
) -> None:
    zone, hours, holidays = calendar_spec
    calendar = BusinessCalendar.from_dict({"timezone": zone, "hours": hours, "holidays": holidays})
    start = datetime.combine(sunday, datetime.min.time(), tzinfo=UTC) + timedelta(
        minutes=offset_minutes
    )
    end = start + timedelta(minutes=length_minutes)

    expected = count_open_minutes(zone, hours, holidays, start, length_minutes)

    assert calendar.between(start, end) == expected
