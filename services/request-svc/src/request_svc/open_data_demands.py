"""The public's demands for open data (Beijing 004 Art.20: answered within 15 working days; Hainan 003 Art.31:
demands are gathered): anyone files one, naming a resource or not; the resource's provider answers it, or the
platform office when none is named (the office may answer any). Where the profile sets a reply time
(`open_data_demand_reply_wd`) a demand unanswered a working day after its due date is overdue, once — a
violation audit-svc gives a rectification notice. Each change and its event in one unit of work."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.calendar_store import CalendarService
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed, field_error
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid
from govshare_common.sharing import PLATFORM_OFFICE
from govshare_common.workdays import WorkingCalendar, recounted_deadline

from request_svc import events, store

SYSTEM_ACTOR = "system"
_COLUMNS = (
    "id::text AS id, department_code, resource_code, subject, content, requester_name, requester_contact, "
    "filed_at, filed_on, working_days, due_on, state, answer, answered_by, answered_at, overdue_since"
)
STATE_LABELS = {"pending": "待答复", "answered": "已答复"}


def _ensure_open_data(profile: Profile) -> None:
    if not profile.open_data:
        raise AppError(
            "本辖区未开展公共数据开放，不受理开放需求。",
            "This jurisdiction does not open data; it takes no open-data demands.",
            code="open_data_off",
            status=404,
        )


def _shape(row: Any, *, show_requester: bool) -> dict[str, Any]:
    d = dict(row._mapping)
    d["state_label"] = STATE_LABELS[d["state"]]
    d["overdue"] = d["overdue_since"] is not None
    if not show_requester:
        d.pop("requester_contact")
    return d


def _event(row: dict[str, Any], actor: str) -> events.OpenDataDemandEvent:
    return events.OpenDataDemandEvent(
        demand_id=row["id"],
        department_code=row["department_code"],
        resource_code=row["resource_code"],
        due_on=row["due_on"],
        state=row["state"],
        actor=actor,
    )


async def file(
    uow: UnitOfWork,
    calendar: CalendarService,
    profile: Profile,
    *,
    resource_code: str | None,
    subject: str,
    content: str,
    requester_name: str,
    requester_contact: str,
) -> dict[str, Any]:
    _ensure_open_data(profile)
    owner = PLATFORM_OFFICE
    if resource_code:
        resource = await store.resource(uow.conn, resource_code)
        if resource is None or resource.status != "published":
            raise ValidationFailed(
                f"目录中没有已发布的信息资源 {resource_code}；不确定资源时可不填，由平台管理机构答复。",
                f"No published resource {resource_code}; leave it out and the platform office answers.",
                details={"fields": [field_error("resource_code", "信息资源不存在", "unknown resource")]},
            )
        owner = resource.provider_code
    filed_on = china_date(uow.clock)
    wd = profile.open_data_demand_reply_wd
    due = (await calendar.add_working_days(uow, filed_on, wd, purpose="开放需求答复期限")).due if wd else None
    demand_id = str(uuid.uuid4())
    row = (
        await uow.execute(
            text(
                "INSERT INTO open_data_demand (id, department_code, resource_code, subject, content, requester_name, "
                "requester_contact, filed_at, filed_on, working_days, due_on, state) VALUES (CAST(:id AS uuid), "
                f":dept, :res, :subject, :content, :name, :contact, :at, :on, :wd, :due, 'pending') RETURNING {_COLUMNS}"
            ),
            {
                "id": demand_id,
                "dept": owner,
                "res": resource_code or None,
                "subject": subject,
                "content": content,
                "name": requester_name,
                "contact": requester_contact,
                "at": uow.clock.now(),
                "on": filed_on,
                "wd": wd,
                "due": due,
            },
        )
    ).one()
    shaped = _shape(row, show_requester=True)
    uow.emit(events.OPEN_DATA_DEMAND_FILED, demand_id, _event(shaped, "public"))
    return shaped


def _may_see(principal: Principal, row: dict[str, Any]) -> bool:
    return principal.has("platform_admin", "auditor") or principal.department == row["department_code"]


async def get(uow: UnitOfWork, principal: Principal, demand_id: str, *, lock: bool = False) -> dict[str, Any]:
    row = None
    if is_uuid(demand_id):
        row = (
            await uow.execute(
                text(
                    f"SELECT {_COLUMNS} FROM open_data_demand WHERE id = CAST(:id AS uuid)"
                    + (" FOR UPDATE" if lock else "")
                ),
                {"id": demand_id},
            )
        ).first()
    if row is None:
        raise NotFound("开放需求不存在。", "No such open-data demand.")
    found = _shape(row, show_requester=True)
    if not _may_see(principal, found):
        raise Forbidden("只能查看本部门应答复的开放需求。", "Not a demand your department answers.", code="not_yours")
    return found


async def listing(
    uow: UnitOfWork, principal: Principal, *, state: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    clauses, params = ["true"], {"limit": limit, "offset": offset, "state": state, "d": principal.department}
    if not principal.has("platform_admin", "auditor"):
        clauses.append("department_code = :d")
    if state:
        clauses.append("state = :state")
    where = " AND ".join(clauses)
    rows = await uow.execute(
        text(
            f"SELECT {_COLUMNS} FROM open_data_demand WHERE {where} "
            "ORDER BY state DESC, due_on NULLS LAST, filed_at LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    total = (await uow.execute(text(f"SELECT count(*) FROM open_data_demand WHERE {where}"), params)).scalar_one()
    return [_shape(r, show_requester=True) for r in rows], int(total)


async def answer(uow: UnitOfWork, principal: Principal, demand_id: str, *, text_: str) -> dict[str, Any]:
    found = await get(uow, principal, demand_id, lock=True)
    if principal.has("auditor") and not principal.has("platform_admin"):
        raise Forbidden("审计员不答复开放需求。", "Auditors do not answer demands.", code="not_yours")
    if found["state"] == "answered":
        raise Conflict("该开放需求已答复。", "The demand is already answered.", code="already_answered")
    row = (
        await uow.execute(
            text(
                "UPDATE open_data_demand SET state = 'answered', answer = :a, answered_by = :by, answered_at = :at "
                f"WHERE id = CAST(:id AS uuid) RETURNING {_COLUMNS}"
            ),
            {"a": text_, "by": principal.subject, "at": uow.clock.now(), "id": demand_id},
        )
    ).one()
    shaped = _shape(row, show_requester=True)
    uow.emit(events.OPEN_DATA_DEMAND_ANSWERED, demand_id, _event(shaped, principal.subject))
    return shaped


async def mark_overdue(uow: UnitOfWork, *, calendar: CalendarService) -> None:
    """Once per demand: unanswered a working day after its due date."""
    today = china_date(uow.clock)
    rows = await uow.execute(
        text(
            f"SELECT {_COLUMNS} FROM open_data_demand WHERE state = 'pending' AND due_on IS NOT NULL "
            "AND due_on < :today AND overdue_since IS NULL FOR UPDATE SKIP LOCKED"
        ),
        {"today": today},
    )
    for row in [_shape(r, show_requester=False) for r in rows]:
        due: date = row["due_on"]
        late = (await calendar.working_days_between(uow, due, today, purpose="overdue open-data demands")).days
        if late < 1:
            continue
        await uow.execute(
            text("UPDATE open_data_demand SET overdue_since = :today WHERE id = CAST(:id AS uuid)"),
            {"today": today, "id": row["id"]},
        )
        row["overdue_since"] = today
        uow.emit(
            events.OPEN_DATA_DEMAND_OVERDUE,
            row["id"],
            events.OpenDataDemandOverdue(**_event(row, SYSTEM_ACTOR).model_dump(), days_late=late),
        )


async def recount(uow: UnitOfWork, before: WorkingCalendar, after: WorkingCalendar, *, year: int) -> int:
    """A year's holidays entered or corrected: every unanswered demand's due date counted again, each move an
    event. Returns how many moved."""
    today = china_date(uow.clock)
    rows = await uow.execute(
        text(
            f"SELECT {_COLUMNS} FROM open_data_demand WHERE state = 'pending' AND due_on IS NOT NULL "
            "AND due_on > :today FOR UPDATE"
        ),
        {"today": today},
    )
    moved = 0
    for row in [_shape(r, show_requester=False) for r in rows]:
        due: date = row["due_on"]
        new_due = recounted_deadline(before, after, today=today, due=due)
        if new_due == due:
            continue
        await uow.execute(
            text("UPDATE open_data_demand SET due_on = :due WHERE id = CAST(:id AS uuid)"),
            {"due": new_due, "id": row["id"]},
        )
        row["due_on"] = new_due
        uow.emit(
            events.OPEN_DATA_DEMAND_DEADLINE_MOVED,
            row["id"],
            events.OpenDataDemandDeadlineMoved(
                **_event(row, SYSTEM_ACTOR).model_dump(), previous_due_on=due, calendar_year=year
            ),
        )
        moved += 1
    return moved
