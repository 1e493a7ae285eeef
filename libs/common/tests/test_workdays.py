from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from govshare_common.workdays import (
    CalendarData,
    Deadline,
    WorkingCalendar,
    china_today,
    statutory_calendar,
    statutory_years,
)

CAL = WorkingCalendar.statutory()


def test_statutory_calendar_agrees_with_the_package_on_every_day_it_covers():
    d, end = date(statutory_years().start, 1, 1), date(statutory_years().stop - 1, 12, 31)
    while d <= end:
        assert CAL.is_working_day(d) == chinese_calendar.is_workday(d), d
        d += timedelta(days=1)


def test_statutory_calendar_2026_data():
    data = statutory_calendar([2026, 2027])
    assert data.known_years == {2026}  # 2027 is beyond the package: left unknown, not an error
    assert data.holidays[date(2026, 10, 1)] == "国庆节"
    assert date(2026, 10, 3) not in data.holidays  # a Saturday: off anyway, not recorded
    assert data.makeup_workdays[date(2026, 10, 10)] == "国庆节"
    assert set(data.makeup_workdays) == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }


# 2026 National Day (State Council notice, as chinesecalendar 1.11 encodes it): off Thu 10-01 to Wed 10-07
# (Mon-Fri days off: 10-01, 10-02, 10-05, 10-06, 10-07); make-up working days Sun 09-20 and Sat 10-10.
# The last working day before it is Wed 09-30; counting starts the day after the start date.
@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        # 10-08, 10-09, Sat 10-10 (make-up), 10-12, 10-13
        (date(2026, 9, 30), 5, date(2026, 10, 13)),
        # ... then 10-14, 10-15, 10-16, 10-19, 10-20
        (date(2026, 9, 30), 10, date(2026, 10, 20)),
        # 09-30, 10-08, 10-09, Sat 10-10 (make-up), 10-12
        (date(2026, 9, 29), 5, date(2026, 10, 12)),
        # ... then 10-13, 10-14, 10-15, 10-16, 10-19
        (date(2026, 9, 29), 10, date(2026, 10, 19)),
    ],
)
def test_deadline_across_national_day_2026(start, n, due):
    assert CAL.add_working_days(start, n) == Deadline(due, frozenset())


# 2026 Spring Festival: off Sun 02-15 to Mon 02-23 (Mon-Fri days off: 02-16 to 02-20 and 02-23); make-up
# working days Sat 02-14 and Sat 02-28. The last working day before it is the make-up Saturday 02-14.
@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        # 02-24, 02-25, 02-26, 02-27, Sat 02-28 (make-up)
        (date(2026, 2, 14), 5, date(2026, 2, 28)),
        # ... then 03-02, 03-03, 03-04, 03-05, 03-06
        (date(2026, 2, 14), 10, date(2026, 3, 6)),
        # Sat 02-14 (make-up), 02-24, 02-25, 02-26, 02-27
        (date(2026, 2, 13), 5, date(2026, 2, 27)),
        # ... then Sat 02-28 (make-up), 03-02, 03-03, 03-04, 03-05
        (date(2026, 2, 13), 10, date(2026, 3, 5)),
    ],
)
def test_deadline_across_spring_festival_2026(start, n, due):
    assert CAL.add_working_days(start, n) == Deadline(due, frozenset())


def test_deadline_into_an_unknown_year_counts_weekends_only_and_is_flagged():
    # From Thu 2026-12-24: 12-25, 12-28, 12-29, 12-30, 12-31, then 2027 by weekends only:
    # Fri 01-01 (counted: 2027 unknown), 01-04, 01-05, 01-06, 01-07.
    deadline = CAL.add_working_days(date(2026, 12, 24), 10)
    assert deadline.due == date(2027, 1, 7)
    assert deadline.unknown_years == {2027}
    assert deadline.flagged


def test_entering_the_new_year_unflags_and_shifts_the_deadline():
    # New Year's Day 2027 is a Friday; entering it as a holiday pushes the 10th working day to Fri 01-08.
    cal = CAL.with_year(2027, {date(2027, 1, 1): "元旦", date(2027, 1, 2): "元旦", date(2027, 1, 3): "元旦"})
    deadline = cal.add_working_days(date(2026, 12, 24), 10)
    assert deadline == Deadline(date(2027, 1, 8), frozenset())
    assert not deadline.flagged
    assert 2027 in cal.known_years and 2027 not in CAL.known_years  # the original is unchanged
    assert set(cal.data.holidays) - set(CAL.data.holidays) == {date(2027, 1, 1)}  # weekend days dropped


def test_with_year_makeup_days_count_and_replace_earlier_entries():
    cal = CAL.with_year(2027, [date(2027, 1, 1)], [date(2027, 1, 9)])  # a Saturday made a working day
    assert cal.is_working_day(date(2027, 1, 9))
    corrected = cal.with_year(2027, [date(2027, 1, 1)])
    assert not corrected.is_working_day(date(2027, 1, 9))


@pytest.mark.parametrize(
    ("holidays", "makeup"),
    [
        ([date(2028, 1, 3)], []),  # wrong year
        ([], [date(2027, 1, 4)]),  # a Monday cannot be a make-up working day
        ([date(2027, 1, 9)], [date(2027, 1, 9)]),  # both off and working
    ],
)
def test_with_year_rejects_inconsistent_entries(holidays, makeup):
    with pytest.raises(ValueError):
        CAL.with_year(2027, holidays, makeup)


def test_calendar_data_rejects_a_weekday_makeup_day():
    with pytest.raises(ValueError):
        CalendarData({}, {date(2026, 10, 9): None}, frozenset({2026}))


def test_working_days_between():
    assert CAL.working_days_between(date(2026, 9, 30), date(2026, 10, 13)).days == 5
    assert CAL.working_days_between(date(2026, 9, 30), date(2026, 10, 20)).days == 10
    assert CAL.working_days_between(date(2026, 10, 13), date(2026, 9, 30)).days == 0
    assert CAL.working_days_between(date(2026, 10, 1), date(2026, 10, 1)).days == 0
    across = CAL.working_days_between(date(2026, 12, 24), date(2027, 1, 7))
    assert (across.days, across.unknown_years, across.flagged) == (10, {2027}, True)


def test_zero_and_negative_n():
    assert CAL.add_working_days(date(2026, 10, 1), 0) == Deadline(date(2026, 10, 1))
    with pytest.raises(ValueError):
        CAL.add_working_days(date(2026, 10, 1), -1)


@given(
    start=st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 10, 31)),
    n=st.integers(min_value=0, max_value=30),
)
def test_add_and_between_are_inverse(start, n):
    deadline = CAL.add_working_days(start, n)
    assert not deadline.flagged
    assert CAL.working_days_between(start, deadline.due).days == n
    assert n == 0 or CAL.is_working_day(deadline.due)


def test_china_today():
    assert china_today(datetime(2026, 9, 30, 17, 0, tzinfo=UTC)) == date(2026, 10, 1)
    assert china_today(datetime(2026, 9, 30, 15, 59, tzinfo=UTC)) == date(2026, 9, 30)
    new_york = datetime(2026, 9, 30, 13, 0, tzinfo=ZoneInfo("America/New_York"))  # 17:00Z
    assert china_today(new_york) == date(2026, 10, 1)
    with pytest.raises(ValueError):
        china_today(datetime(2026, 9, 30, 17, 0))
