"""Rectification notices (整改通知): opened from a violation, answered by the department, closed or escalated
by the platform office. Each step is a row change and its event, in one transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.calendar_store import CalendarService
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import Forbidden, NotFound
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid
from govshare_common.sharing import PLATFORM_OFFICE

from audit_svc import accountable, events
from audit_svc.domain import NOTICE_STATUS_LABELS, PERSON_ROLES, VIOLATION_LABELS, next_notice_status

_COLUMNS = (
    "id, number, department_code, violation, reference, description, source_event_id, reported_by, opened_at, "
    "opened_on, working_days, due_on, status, answer, answered_by, answered_at, decision_note, decided_by, "
    "decided_at, closed_at, escalations, addressed_role, addressed_name"
)


async def open_notice(
    uow: UnitOfWork,
    calendar: CalendarService,
    *,
    department: str,
    violation: str,
    reference: str,
    description: str,
    profile: Profile,
    source_event_id: str | None = None,
    reported_by: str | None = None,
) -> dict[str, Any] | None:
    """Open a notice with the profile's deadline, addressed to the department's first accountable person on
    file (its head, or Zhonglou's chief data officer); None when this violation already has one."""
    profile = await accountable.department_profile(uow, profile, department)  # a hosted jurisdiction's own
    now = uow.clock.now()
    opened_on = china_date(uow.clock)
    working_days = profile.rectification_wd
    addressee = await accountable.person(uow, department, profile.accountable_role)
    deadline = await calendar.add_working_days(uow, opened_on, working_days, purpose="整改通知整改期限")
    seq = (await uow.execute(text("SELECT nextval('notice_number')"))).scalar_one()
    notice_id = str(uuid.uuid4())
    number = f"ZG{opened_on.year}-{seq:05d}"
    inserted = (
        await uow.execute(
            text(
                "INSERT INTO notice (id, number, department_code, violation, reference, description, source_event_id, "
                "reported_by, opened_at, opened_on, working_days, due_on, status, addressed_role, addressed_name) VALUES "
                "(:id, :number, :dept, :violation, :ref, :description, CAST(:source AS uuid), :reported_by, :now, "
                ":on, :wd, :due, 'open', :role, :addressee) "
                "ON CONFLICT (violation, reference) DO NOTHING RETURNING id"
            ),
            {
                "id": notice_id,
                "number": number,
                "dept": department,
                "violation": violation,
                "ref": reference,
                "description": description,
                "source": source_event_id,
                "reported_by": reported_by,
                "now": now,
                "on": opened_on,
                "wd": working_days,
                "due": deadline.due,
                "role": profile.accountable_role,
                "addressee": addressee["name"] if addressee else None,
            },
        )
    ).first()
    if inserted is None:
        return None
    uow.emit(
        events.NOTICE_OPENED,
        notice_id,
        events.NoticeOpened(
            notice_id=notice_id,
            number=number,
            department_code=department,
            violation=violation,
            reference=reference,
            description=description,
            opened_on=opened_on,
            working_days=working_days,
            due_on=deadline.due,
            source_event_id=source_event_id,
            reported_by=reported_by,
        ),
    )
    return await get(uow, notice_id)


def _shape(row: Any, today: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["id"] = str(d["id"])
    if d["source_event_id"] is not None:
        d["source_event_id"] = str(d["source_event_id"])
    d["violation_label"] = VIOLATION_LABELS.get(d["violation"], (d["violation"], ""))[0]
    d["addressed_role_label"] = PERSON_ROLES.get(d["addressed_role"] or "")
    d["status_label"] = NOTICE_STATUS_LABELS.get(d["status"], d["status"])
    d["overdue"] = d["status"] in ("open", "escalated") and today is not None and d["due_on"] < today
    return d


async def get(uow: UnitOfWork, notice_id: str, *, lock: bool = False) -> dict[str, Any]:
    if not is_uuid(notice_id):
        raise NotFound("整改通知不存在。", "No such notice.")
    row = (
        await uow.execute(
            text(f"SELECT {_COLUMNS} FROM notice WHERE id = CAST(:id AS uuid)" + (" FOR UPDATE" if lock else "")),
            {"id": notice_id},
        )
    ).first()
    if row is None:
        raise NotFound("整改通知不存在。", "No such notice.")
    return _shape(row, china_date(uow.clock))


def visible_to(principal: Principal, notice: dict[str, Any]) -> bool:
    return principal.has("platform_admin", "auditor") or principal.department == notice["department_code"]


async def list_notices(
    uow: UnitOfWork,
    *,
    department: str | None,
    statuses: list[str] | None,
    violation: str | None,
    overdue_only: bool,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    today = china_date(uow.clock)
    where = ["true"]
    params: dict[str, Any] = {"l": limit, "o": offset, "today": today}
    if department:
        where.append("department_code = :dept")
        params["dept"] = department
    if statuses:
        where.append("status = ANY(:statuses)")
        params["statuses"] = statuses
    if violation:
        where.append("violation = :violation")
        params["violation"] = violation
    if overdue_only:
        where.append("status IN ('open', 'escalated') AND due_on < :today")
    clause = " AND ".join(where)
    total = (await uow.execute(text(f"SELECT count(*) FROM notice WHERE {clause}"), params)).scalar_one()
    rows = await uow.execute(
        text(f"SELECT {_COLUMNS} FROM notice WHERE {clause} ORDER BY opened_at DESC, number DESC LIMIT :l OFFSET :o"),
        params,
    )
    return [_shape(r, today) for r in rows], int(total)


async def answer(uow: UnitOfWork, principal: Principal, notice_id: str, *, text_: str) -> dict[str, Any]:
    notice = await get(uow, notice_id, lock=True)
    addressee = notice["department_code"]
    office_answers = addressee == PLATFORM_OFFICE and principal.has("platform_admin")
    if principal.department != addressee and not office_answers:
        raise Forbidden("只能答复发给本部门的整改通知。", "You may answer only notices to your department.")
    next_notice_status(notice["status"], "answer")
    now = uow.clock.now()
    await uow.execute(
        text(
            "UPDATE notice SET status = 'answered', answer = :a, answered_by = :by, answered_at = :now "
            "WHERE id = CAST(:id AS uuid)"
        ),
        {"a": text_, "by": principal.subject, "now": now, "id": notice_id},
    )
    uow.emit(
        events.NOTICE_ANSWERED,
        notice_id,
        events.NoticeAnswered(
            notice_id=notice_id,
            department_code=notice["department_code"],
            answered_by=principal.subject,
            answered_at=now,
        ),
    )
    return await get(uow, notice_id)


async def decide(
    uow: UnitOfWork,
    calendar: CalendarService,
    principal: Principal,
    notice_id: str,
    *,
    action: str,
    note: str,
    working_days: int,
) -> dict[str, Any]:
    """close: the rectification is accepted; escalate: not enough, a new deadline is set and it is supervised."""
    notice = await get(uow, notice_id, lock=True)
    target = next_notice_status(notice["status"], action)
    now = uow.clock.now()
    due_on = notice["due_on"]
    if action == "escalate":
        due_on = (
            await calendar.add_working_days(uow, china_date(uow.clock), working_days, purpose="整改通知升级督办")
        ).due
    await uow.execute(
        text(
            "UPDATE notice SET status = :s, decision_note = :note, decided_by = :by, decided_at = :now, "
            "closed_at = CASE WHEN :s = 'closed' THEN CAST(:now AS timestamptz) ELSE closed_at END, due_on = :due, "
            "escalations = escalations + CASE WHEN :s = 'escalated' THEN 1 ELSE 0 END WHERE id = CAST(:id AS uuid)"
        ),
        {"s": target, "note": note, "by": principal.subject, "now": now, "due": due_on, "id": notice_id},
    )
    uow.emit(
        events.NOTICE_CLOSED if action == "close" else events.NOTICE_ESCALATED,
        notice_id,
        events.NoticeDecided(
            notice_id=notice_id,
            department_code=notice["department_code"],
            decided_by=principal.subject,
            note=note,
            due_on=due_on,
        ),
    )
    return await get(uow, notice_id)
