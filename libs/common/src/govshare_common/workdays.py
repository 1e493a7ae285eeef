"""The Chinese working-day calendar: statutory holidays, make-up working days (调休) and deadlines.

Owns: reading the State Council holiday arrangements that the chinesecalendar package encodes, a calendar
the platform office can extend year by year, counting "N个工作日内" deadlines, and the China calendar
date of an instant. Years the calendar does not know are counted by weekends only and reported, never
silently (REQUIREMENTS "Facts the code must get right").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import chinese_calendar

CHINA_TZ = ZoneInfo("Asia/Shanghai")

_CHINESE_NAMES = {h.value: h.chinese for h in chinese_calendar.Holiday}


def _is_weekend(d: date) -> bool:
    return d.weekday() >= 5


@dataclass(frozen=True)
class CalendarData:
    """What the calendar knows, in the shape it is stored in.

    holidays: Mon-Fri dates that are off, with the holiday's name where one is known.
    makeup_workdays: Sat/Sun dates that are working days (调休), with the holiday they make up for.
    known_years: the years whose arrangement has been entered; only these use the two maps.
    """

    holidays: Mapping[date, str | None] = field(default_factory=dict)
    makeup_workdays: Mapping[date, str | None] = field(default_factory=dict)
    known_years: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for d in self.holidays:
            if _is_weekend(d):
                raise ValueError(f"holiday {d} is a weekend day; only Mon-Fri days off are recorded")
        for d in self.makeup_workdays:
            if not _is_weekend(d):
                raise ValueError(f"make-up working day {d} is not a Saturday or Sunday")
            if d in self.holidays:
                raise ValueError(f"{d} is both a holiday and a make-up working day")
        stray = {d.year for d in (*self.holidays, *self.makeup_workdays)} - self.known_years
        if stray:
            raise ValueError(f"dates in years not marked known: {sorted(stray)}")
        object.__setattr__(self, "holidays", MappingProxyType(dict(self.holidays)))
        object.__setattr__(self, "makeup_workdays", MappingProxyType(dict(self.makeup_workdays)))
        object.__setattr__(self, "known_years", frozenset(self.known_years))


def statutory_years() -> range:
    """The years the installed chinesecalendar package covers (2004-2026 for version 1.11)."""
    years = [d.year for d in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)


def statutory_calendar(years: Iterable[int]) -> CalendarData:
    """The State Council arrangements for `years`, as encoded by chinesecalendar.

    Years the package does not cover are left out of known_years (not an error): the caller sees
    them as unknown and deadlines touching them are flagged. Holiday names are in Chinese (国庆节).
    """
    covered = statutory_years()
    wanted = frozenset(y for y in years if y in covered)
    holidays = {
        d: _CHINESE_NAMES.get(name, name)
        for d, name in chinese_calendar.holidays.items()
        if d.year in wanted and not _is_weekend(d)
    }
    makeup = {
        d: _CHINESE_NAMES.get(name, name)
        for d, name in chinese_calendar.workdays.items()
        if d.year in wanted and _is_weekend(d)
    }
    return CalendarData(holidays, makeup, wanted)


@dataclass(frozen=True, slots=True)
class Deadline:
    """A due date; unknown_years lists years it crossed that the calendar does not know."""

    due: date
    unknown_years: frozenset[int] = frozenset()

    @property
    def flagged(self) -> bool:
        """True when the due date was counted by weekends only for some year: warn and emit an event."""
        return bool(self.unknown_years)


@dataclass(frozen=True, slots=True)
class WorkingDayCount:
    """A number of working days; unknown_years as in Deadline."""

    days: int
    unknown_years: frozenset[int] = frozenset()

    @property
    def flagged(self) -> bool:
        return bool(self.unknown_years)


def _as_names(dates: Mapping[date, str | None] | Iterable[date]) -> dict[date, str | None]:
    if isinstance(dates, Mapping):
        return dict(dates)
    return dict.fromkeys(dates)


class WorkingCalendar:
    """Working days: Mon-Fri minus statutory holidays plus make-up working days."""

    def __init__(self, data: CalendarData) -> None:
        self._data = data

    @classmethod
    def statutory(cls, years: Iterable[int] | None = None) -> WorkingCalendar:
        """A calendar from chinesecalendar alone (all the years it covers unless told otherwise)."""
        return cls(statutory_calendar(statutory_years() if years is None else years))

    @property
    def data(self) -> CalendarData:
        return self._data

    @property
    def known_years(self) -> frozenset[int]:
        return self._data.known_years

    def with_year(
        self,
        year: int,
        holidays: Mapping[date, str | None] | Iterable[date],
        makeup_workdays: Mapping[date, str | None] | Iterable[date] = (),
    ) -> WorkingCalendar:
        """A new calendar that knows `year` from a State Council notice; replaces what it knew of it.

        `holidays` may list the whole break as the notice does, weekend days included: those are off
        anyway and are dropped. Every date must lie in `year`.
        """
        new_holidays = _as_names(holidays)
        new_makeup = _as_names(makeup_workdays)
        outside = sorted(d for d in (*new_holidays, *new_makeup) if d.year != year)
        if outside:
            raise ValueError(f"dates outside {year}: {outside}")
        both = sorted(new_holidays.keys() & new_makeup.keys())
        if both:
            raise ValueError(f"dates both off and make-up working days: {both}")
        kept_holidays = {d: n for d, n in self._data.holidays.items() if d.year != year}
        kept_makeup = {d: n for d, n in self._data.makeup_workdays.items() if d.year != year}
        kept_holidays.update((d, n) for d, n in new_holidays.items() if not _is_weekend(d))
        kept_makeup.update(new_makeup)
        return WorkingCalendar(CalendarData(kept_holidays, kept_makeup, self.known_years | {year}))

    def is_working_day(self, d: date) -> bool:
        """Whether `d` is a working day; in an unknown year, whether it is Mon-Fri."""
        if d in self._data.makeup_workdays:
            return True
        return not _is_weekend(d) and d not in self._data.holidays

    def add_working_days(self, start: date, n: int) -> Deadline:
        """The n-th working day after `start`; `start` itself does not count ("N个工作日内" runs from
        the day after submission). n == 0 gives `start`."""
        if n < 0:
            raise ValueError("n must not be negative")
        d, counted, touched = start, 0, set()
        while counted < n:
            d += timedelta(days=1)
            touched.add(d.year)
            if self.is_working_day(d):
                counted += 1
        return Deadline(d, frozenset(touched - self.known_years))

    def working_days_between(self, a: date, b: date) -> WorkingDayCount:
        """Working days in (a, b]: how many of a deadline's days have elapsed from a to b."""
        if b <= a:
            return WorkingDayCount(0)
        days = [a + timedelta(days=i) for i in range(1, (b - a).days + 1)]
        touched = {d.year for d in days}
        count = sum(1 for d in days if self.is_working_day(d))
        return WorkingDayCount(count, frozenset(touched - self.known_years))


def china_today(now: datetime) -> date:
    """The calendar date in China at the instant `now`, whatever the server's zone."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("china_today needs an aware datetime")
    return now.astimezone(CHINA_TZ).date()


def recounted_deadline(before: WorkingCalendar, after: WorkingCalendar, *, today: date, due: date) -> date:
    """A running deadline after the calendar changed: the working days it still had under the old calendar,
    counted again from today under the new one. Days already past keep the count they had; a deadline due
    today or earlier is left alone (the overdue jobs settle it). Every service with stored deadlines uses it
    when a year's holidays are entered or corrected."""
    if due <= today:
        return due
    left = before.working_days_between(today, due).days
    return after.add_working_days(today, left).due
