"""When the platform office enters or corrects a year's holidays, the deadlines still running are recounted
(`govshare_common.workdays.recounted_deadline`): a new holiday inside a deadline moves its due date out by a working day, a
new make-up working day brings it in. Open-data demands not yet answered are recounted likewise. A request paused for the consumer's information is left as it is:
when its clock restarts, its due date moves by the paused working days (flows.provide_info)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from govshare_common.calendar_store import YEAR_PUBLISHED, CalendarService, published_year_change
from govshare_common.clock import china_date
from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope
from govshare_common.workdays import WorkingCalendar, recounted_deadline

from request_svc import domain, events, flows, open_data_demands, store


def calendar_follower(calendar: Callable[[], CalendarService]) -> Subscription:
    """The gateway's calendar events: store the year in this service's copy, then recount the deadlines.
    (Registered for the gateway's topic, it takes the place of the plain calendar follower.)"""
    sub = Subscription(source="gateway")

    @sub.on(YEAR_PUBLISHED)
    async def _year_published(env: Envelope, uow: Any) -> None:
        before, after, year = await published_year_change(calendar(), uow, env)
        await recount_deadlines(uow, before, after, year=year)
        await open_data_demands.recount(uow, before, after, year=year)

    return sub


async def recount_deadlines(uow: UnitOfWork, before: WorkingCalendar, after: WorkingCalendar, *, year: int) -> int:
    """Move every running deadline the change touches; each move is recorded and emitted. Returns how many."""
    now, today = uow.clock.now(), china_date(uow.clock)
    moved = 0
    for row in await store.open_with_deadline(uow.conn):
        due = row["due_date"]
        new_due = recounted_deadline(before, after, today=today, due=due)
        if new_due == due:
            continue
        await store.update_request(
            uow.conn,
            row["id"],
            now=now,
            due_date=new_due,
            due_soon_sent=row["due_soon_sent"] and new_due <= due,
        )
        note = f"{year} 年节假日安排录入或调整，办理期限按新日历重新计算"
        await store.add_history(
            uow.conn,
            row["id"],
            action="deadline_moved",
            actor=domain.SYSTEM_ACTOR,
            department=None,
            at=now,
            note=note,
            due_date=new_due,
        )
        uow.emit(
            events.DEADLINE_MOVED,
            row["id"],
            events.DeadlineMoved(
                **flows.event_fields(row, domain.SYSTEM_ACTOR, due_date=new_due),
                previous_due_date=due,
                calendar_year=year,
            ),
        )
        moved += 1
    return moved
