"""The dashboard's period choice, previous periods and trend weeks (no browser needed)."""

from __future__ import annotations

from datetime import date

import pytest

from hub.web.pages.periods import ALL_DATA, PeriodError, choose_period, default_month, month_period

# Monthly ticket counts of the bundled ServiceNow log, oldest first.
LOG_MONTHS = [
    ("2016-02", 207), ("2016-03", 8995), ("2016-04", 7934), ("2016-05", 7508), ("2016-06", 5),
    ("2016-07", 14), ("2016-08", 15), ("2016-09", 12), ("2016-10", 16), ("2016-11", 26),
    ("2016-12", 37), ("2017-01", 94), ("2017-02", 55),
]


def test_default_month_skips_sparse_tail():
    assert default_month(LOG_MONTHS) == "2016-05"


def test_default_month_leaves_out_running_month():
    months = [("2024-01", 100), ("2024-02", 120), ("2024-03", 40)]

    assert default_month(months) == "2024-02"


def test_default_month_of_single_month():
    assert default_month([("2024-03", 3)]) == "2024-03"


def test_no_data_defaults_to_all():
    assert choose_period({}, []) is ALL_DATA


def test_month_argument_selects_month():
    period = choose_period({"period": "2016-04"}, LOG_MONTHS)

    assert (period.since, period.until, period.label) == (date(2016, 4, 1), date(2016, 5, 1), "April 2016")


def test_previous_of_january_is_december():
    previous = month_period("2017-01").previous()

    assert previous is not None
    assert (previous.key, previous.since, previous.until) == ("2016-12", date(2016, 12, 1), date(2017, 1, 1))


def test_range_includes_last_day():
    period = choose_period({"since": "2016-03-01", "until": "2016-03-31"}, LOG_MONTHS)

    assert (period.since, period.until) == (date(2016, 3, 1), date(2016, 4, 1))
    assert period.query() == {"since": "2016-03-01", "until": "2016-03-31"}


def test_previous_range_has_same_length():
    # 31 days before 2016-03-01 is 2016-01-30, since February 2016 has 29 days.
    previous = choose_period({"since": "2016-03-01", "until": "2016-03-31"}, LOG_MONTHS).previous()

    assert previous is not None
    assert (previous.since, previous.until, previous.label) == (
        date(2016, 1, 30), date(2016, 3, 1), "2016-01-30 to 2016-02-29",
    )


def test_all_data_has_no_previous():
    assert ALL_DATA.previous() is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"period": "2016-13"}, "period '2016-13' is invalid"),
        ({"period": "May"}, "period 'May' is invalid"),
        ({"since": "2016-03-01"}, "needs both since and until"),
        ({"since": "2016-03-01", "until": "2016-02-01"}, "is before since"),
        ({"since": "2016-02-30", "until": "2016-03-01"}, "since '2016-02-30' is invalid"),
        ({"period": "9999-12"}, "period '9999-12' is out of range"),
        ({"period": "1969-12"}, "period '1969-12' is out of range"),
        ({"since": "2016-03-01", "until": "2101-01-01"}, "until '2101-01-01' is out of range"),
        ({"since": "2000-01-01", "until": "2030-01-01"}, "at most 10957 days"),
    ],
)
def test_invalid_period_is_rejected(arguments, message):
    with pytest.raises(PeriodError, match=message):
        choose_period(arguments, LOG_MONTHS)


def test_first_and_last_months_are_accepted():
    first = choose_period({"period": "1970-01"}, LOG_MONTHS)
    last = choose_period({"period": "2100-12"}, LOG_MONTHS)

    assert (first.since, first.until) == (date(1970, 1, 1), date(1970, 2, 1))
    assert (last.since, last.until) == (date(2100, 12, 1), date(2101, 1, 1))


def test_month_trend_covers_thirteen_weeks():
    weeks = month_period("2016-05").trend_window()

    assert weeks[0] == date(2016, 3, 7)
    assert weeks[-1] == date(2016, 5, 30)
    assert len(weeks) == 13


def test_long_range_trend_starts_with_its_first_week():
    # 2016-01-01 is a Friday; its week starts on Monday 2015-12-28.
    weeks = choose_period({"since": "2016-01-01", "until": "2016-06-30"}, LOG_MONTHS).trend_window()

    assert weeks[0] == date(2015, 12, 28)
    assert weeks[-1] == date(2016, 6, 27)
    assert len(weeks) == 27


def test_all_data_trend_spans_data_weeks():
    weeks = ALL_DATA.trend_window(date(2016, 2, 1), date(2016, 3, 1))

    assert weeks == [date(2016, 2, 1), date(2016, 2, 8), date(2016, 2, 15), date(2016, 2, 22), date(2016, 2, 29)]
