"""A year's holidays entered or corrected: the running deadlines of rectification notices (open, escalated)
and written complaints (not yet answered) recounted on the new calendar (workdays.recounted_deadline), each
move emitted."""

from __future__ import annotations

from sqlalchemy import text

from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.workdays import WorkingCalendar, recounted_deadline

from audit_svc import events

_RUNNING = {
    "notice": ("status IN ('open', 'escalated')", events.NOTICE_DEADLINE_MOVED),
    "complaint": ("status <> 'answered'", events.COMPLAINT_DEADLINE_MOVED),
}


async def recount(uow: UnitOfWork, before: WorkingCalendar, after: WorkingCalendar, *, year: int) -> int:
    today = china_date(uow.clock)
    moved = 0
    for table, (running, event_type) in _RUNNING.items():
        rows = await uow.execute(
            text(f"SELECT id::text AS id, department_code, due_on FROM {table} WHERE {running} AND due_on > :t"),
            {"t": today},
        )
        for r in rows.all():
            new_due = recounted_deadline(before, after, today=today, due=r.due_on)
            if new_due == r.due_on:
                continue
            await uow.execute(
                text(f"UPDATE {table} SET due_on = :due WHERE id = CAST(:id AS uuid)"), {"due": new_due, "id": r.id}
            )
            uow.emit(
                event_type,
                r.id,
                events.DeadlineMoved(
                    id=r.id,
                    department_code=r.department_code,
                    previous_due_on=r.due_on,
                    due_on=new_due,
                    calendar_year=year,
                ),
            )
            moved += 1
    return moved
