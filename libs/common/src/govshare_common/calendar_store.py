"""The working-day calendar in the database, and how it stays the same in every service.

Each service keeps its own copy (a service never reads another's schema), seeded from chinesecalendar when
its schema is created. The platform office enters a new year's State Council notice once, at the gateway;
the gateway's `platform.calendar.year_published` event brings it to every other service.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text

from govshare_common.bounds import Day
from govshare_common.consumer import Subscription
from govshare_common.events import Envelope, EventRegistry
from govshare_common.workdays import CalendarData, Deadline, WorkingCalendar, WorkingDayCount, statutory_calendar

log = logging.getLogger("govshare.calendar")

CALENDAR_DDL = [
    """
    CREATE TABLE calendar_year (
        year integer PRIMARY KEY,
        source text NOT NULL,
        notice text,
        entered_by text,
        entered_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE calendar_day (
        day date PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('holiday', 'workday')),
        name text
    )
    """,
]

YEAR_PUBLISHED = "platform.calendar.year_published"
YEAR_UNKNOWN = "platform.calendar.year_unknown"


class CalendarDay(BaseModel):
    day: Day
    name: str | None = None


class YearPublished(BaseModel):
    year: int
    holidays: list[CalendarDay] = Field(description="Mon–Fri days off (放假)")
    makeup_workdays: list[CalendarDay] = Field(description="Sat/Sun working days (调休上班)")
    notice: str | None = None
    entered_by: str | None = None


class YearUnknown(BaseModel):
    years: list[int]
    start: date
    working_days: int
    due: date
    purpose: str


PLATFORM_EVENTS = EventRegistry()
PLATFORM_EVENTS.register(YEAR_PUBLISHED, YearPublished, "a year's holiday arrangement was entered")
PLATFORM_EVENTS.register(YEAR_UNKNOWN, YearUnknown, "a deadline reached a year the calendar does not know")


def seed_statements() -> list[tuple[str, Any]]:
    """Rows for a new schema: every year chinesecalendar covers."""
    from govshare_common.workdays import statutory_years

    data = statutory_calendar(statutory_years())
    return [
        (
            "INSERT INTO calendar_year (year, source) VALUES (:year, 'chinesecalendar')",
            [{"year": y} for y in sorted(data.known_years)],
        ),
        (
            "INSERT INTO calendar_day (day, kind, name) VALUES (:day, :kind, :name)",
            [{"day": d, "kind": "holiday", "name": n} for d, n in data.holidays.items()]
            + [{"day": d, "kind": "workday", "name": n} for d, n in data.makeup_workdays.items()],
        ),
    ]


async def load_calendar(conn: Any) -> WorkingCalendar:
    years = frozenset(r.year for r in await conn.execute(text("SELECT year FROM calendar_year")))
    holidays: dict[date, str | None] = {}
    makeup: dict[date, str | None] = {}
    for row in await conn.execute(text("SELECT day, kind, name FROM calendar_day")):
        (holidays if row.kind == "holiday" else makeup)[row.day] = row.name
    return WorkingCalendar(CalendarData(holidays, makeup, years))


async def store_year(conn: Any, event: YearPublished, *, source: str) -> None:
    """Replace what this schema knows of `event.year`."""
    await conn.execute(
        text("DELETE FROM calendar_day WHERE day >= :a AND day <= :b"),
        {"a": date(event.year, 1, 1), "b": date(event.year, 12, 31)},
    )
    rows = [{"day": d.day, "kind": "holiday", "name": d.name} for d in event.holidays] + [
        {"day": d.day, "kind": "workday", "name": d.name} for d in event.makeup_workdays
    ]
    if rows:
        await conn.execute(text("INSERT INTO calendar_day (day, kind, name) VALUES (:day, :kind, :name)"), rows)
    await conn.execute(
        text(
            "INSERT INTO calendar_year (year, source, notice, entered_by, entered_at) "
            "VALUES (:year, :source, :notice, :by, now()) ON CONFLICT (year) DO UPDATE SET "
            "source = excluded.source, notice = excluded.notice, entered_by = excluded.entered_by, entered_at = now()"
        ),
        {"year": event.year, "source": source, "notice": event.notice, "by": event.entered_by},
    )


class CalendarService:
    """The service's calendar, cached; deadlines that reach an unknown year warn and emit an event."""

    REFRESH_SECONDS = 30.0

    def __init__(self, db: Any) -> None:
        self.db = db
        self.calendar = WorkingCalendar(CalendarData())
        self._loaded_at = 0.0
        self._stamp: tuple[Any, ...] | None = None

    async def reload(self) -> None:
        # One snapshot: a year applied between reading the years and reading the days would otherwise pair
        # the days of a year with a list of years that does not have it yet.
        async with self.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                self.calendar = await load_calendar(conn)
                self._stamp = await self._version(conn)
        self._loaded_at = time.monotonic()

    async def _version(self, conn: Any) -> tuple[Any, ...]:
        row = (await conn.execute(text("SELECT count(*), max(entered_at) FROM calendar_year"))).one()
        return tuple(row)

    async def current(self) -> WorkingCalendar:
        # Another replica may have applied a new year: a cheap version check at most every 30 s.
        if time.monotonic() - self._loaded_at > self.REFRESH_SECONDS:
            async with self.db.engine.connect() as conn:
                stamp = await self._version(conn)
            self._loaded_at = time.monotonic()
            if stamp != self._stamp:
                await self.reload()
        return self.calendar

    async def add_working_days(self, uow: Any, start: date, n: int, *, purpose: str) -> Deadline:
        deadline = (await self.current()).add_working_days(start, n)
        if deadline.flagged:
            self._warn(uow, sorted(deadline.unknown_years), start, n, deadline.due, purpose)
        return deadline

    async def working_days_between(self, uow: Any, a: date, b: date, *, purpose: str) -> WorkingDayCount:
        count = (await self.current()).working_days_between(a, b)
        if count.flagged:
            self._warn(uow, sorted(count.unknown_years), a, count.days, b, purpose)
        return count

    def _warn(self, uow: Any, years: list[int], start: date, n: int, due: date, purpose: str) -> None:
        log.warning(
            "working-day calendar does not know %s: %s counted by weekends only; enter the State Council "
            "holiday notice for that year",
            years,
            purpose,
        )
        uow.emit(
            YEAR_UNKNOWN,
            f"calendar-{years[0]}",
            YearUnknown(years=years, start=start, working_days=n, due=due, purpose=purpose),
        )

    async def publish_year(self, uow: Any, event: YearPublished) -> None:
        """The gateway's write: store the year and tell every service."""
        await store_year(uow.conn, event, source="notice")
        uow.emit(YEAR_PUBLISHED, f"calendar-{event.year}", event)
        self.invalidate()

    async def apply_published_year(self, uow: Any, env: Envelope) -> None:
        """Another service's side of a published year: store it in this service's calendar."""
        await store_year(uow.conn, YearPublished.model_validate(env.data), source="notice")
        self.invalidate()

    def invalidate(self) -> None:
        """Reload the calendar at its next use (the stored years changed)."""
        self._loaded_at = 0.0
        self._stamp = None


async def published_year_change(
    service: CalendarService, uow: Any, env: Envelope
) -> tuple[WorkingCalendar, WorkingCalendar, int]:
    """Apply a published year to this service's copy; the calendar before and after, and the year, for the
    service to recount its stored deadlines (workdays.recounted_deadline)."""
    before = await service.current()
    published = YearPublished.model_validate(env.data)
    await service.apply_published_year(uow, env)
    after = before.with_year(
        published.year,
        {d.day: d.name for d in published.holidays},
        {d.day: d.name for d in published.makeup_workdays},
    )
    return before, after, published.year


def calendar_subscription(service: CalendarService) -> Subscription:
    sub = Subscription(source="gateway")

    @sub.on(YEAR_PUBLISHED)
    async def _apply(env: Envelope, uow: Any) -> None:
        await service.apply_published_year(uow, env)

    return sub
