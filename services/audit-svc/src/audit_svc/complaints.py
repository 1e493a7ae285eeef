"""Written complaints (Hainan 003 Art.41): registered by the platform office, handled, and answered in writing
within a deadline. The complainant's name and contact are shown only to the platform office and auditors."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.calendar_store import CalendarService
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import Conflict, NotFound
from govshare_common.identifiers import mask_name, mask_phone
from govshare_common.record_ids import is_uuid

from audit_svc import events
from audit_svc.domain import require

STATUS_LABELS = {"registered": "已登记", "handling": "办理中", "answered": "已书面答复"}

_COLUMNS = (
    "id, number, complainant_name, complainant_contact, department_code, subject, content, received_on, channel, "
    "registered_by, registered_at, due_on, status, handling_note, handled_by, answer, answered_by, answered_on, "
    "answered_at"
)


def _shape(row: Any, principal: Principal, today: date) -> dict[str, Any]:
    d = dict(row._mapping)
    d["id"] = str(d["id"])
    if not principal.has("platform_admin", "auditor"):
        d["complainant_name"] = mask_name(d["complainant_name"])
        d["complainant_contact"] = mask_phone(d["complainant_contact"])
    d["status_label"] = STATUS_LABELS[d["status"]]
    d["overdue"] = d["status"] != "answered" and d["due_on"] < today
    return d


async def register(
    uow: UnitOfWork, calendar: CalendarService, principal: Principal, *, body: dict[str, Any], reply_wd: int
) -> dict[str, Any]:
    complaint_id = str(uuid.uuid4())
    seq = (await uow.execute(text("SELECT nextval('complaint_number')"))).scalar_one()
    number = f"TS{body['received_on'].year}-{seq:05d}"
    due = await calendar.add_working_days(uow, body["received_on"], reply_wd, purpose="书面投诉答复期限")
    await uow.execute(
        text(
            f"INSERT INTO complaint ({_COLUMNS}) VALUES (:id, :number, :name, :contact, :dept, :subject, :content, "
            ":received_on, :channel, :by, :now, :due, 'registered', NULL, NULL, NULL, NULL, NULL, NULL)"
        ),
        {
            "id": complaint_id,
            "number": number,
            "name": body["complainant_name"],
            "contact": body["complainant_contact"],
            "dept": body.get("department_code"),
            "subject": body["subject"],
            "content": body["content"],
            "received_on": body["received_on"],
            "channel": body["channel"],
            "by": principal.subject,
            "now": uow.clock.now(),
            "due": due.due,
        },
    )
    uow.emit(
        events.COMPLAINT_REGISTERED,
        complaint_id,
        events.ComplaintRegistered(
            complaint_id=complaint_id,
            number=number,
            department_code=body.get("department_code"),
            received_on=body["received_on"],
            due_on=due.due,
            channel=body["channel"],
        ),
    )
    return await get(uow, principal, complaint_id)


async def get(uow: UnitOfWork, principal: Principal, complaint_id: str, *, lock: bool = False) -> dict[str, Any]:
    if not is_uuid(complaint_id):
        raise NotFound("投诉不存在。", "No such complaint.")
    row = (
        await uow.execute(
            text(f"SELECT {_COLUMNS} FROM complaint WHERE id = CAST(:id AS uuid)" + (" FOR UPDATE" if lock else "")),
            {"id": complaint_id},
        )
    ).first()
    if row is None or not (principal.has("platform_admin", "auditor") or principal.department == row.department_code):
        raise NotFound("投诉不存在。", "No such complaint.")
    return _shape(row, principal, china_date(uow.clock))


async def list_complaints(
    uow: UnitOfWork, principal: Principal, *, department: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where: list[str] = ["true"]
    params: dict[str, Any] = {"l": limit, "o": offset}
    if department:
        where.append("department_code = :dept")
        params["dept"] = department
    if status:
        where.append("status = :status")
        params["status"] = status
    clause = " AND ".join(where)
    total = (await uow.execute(text(f"SELECT count(*) FROM complaint WHERE {clause}"), params)).scalar_one()
    rows = await uow.execute(
        text(f"SELECT {_COLUMNS} FROM complaint WHERE {clause} ORDER BY registered_at DESC LIMIT :l OFFSET :o"), params
    )
    today = china_date(uow.clock)
    return [_shape(r, principal, today) for r in rows], int(total)


async def handle(uow: UnitOfWork, principal: Principal, complaint_id: str, *, note: str) -> dict[str, Any]:
    current = await get(uow, principal, complaint_id, lock=True)
    require(current["status"] != "answered", Conflict("该投诉已书面答复。", "The complaint is already answered."))
    await uow.execute(
        text(
            "UPDATE complaint SET status = 'handling', handling_note = :n, handled_by = :by WHERE id = CAST(:id AS uuid)"
        ),
        {"n": note, "by": principal.subject, "id": complaint_id},
    )
    return await get(uow, principal, complaint_id)


async def answer(uow: UnitOfWork, principal: Principal, complaint_id: str, *, answer_text: str) -> dict[str, Any]:
    current = await get(uow, principal, complaint_id, lock=True)
    require(current["status"] != "answered", Conflict("该投诉已书面答复。", "The complaint is already answered."))
    today = china_date(uow.clock)
    await uow.execute(
        text(
            "UPDATE complaint SET status = 'answered', answer = :a, answered_by = :by, answered_on = :on, "
            "answered_at = :now WHERE id = CAST(:id AS uuid)"
        ),
        {"a": answer_text, "by": principal.subject, "on": today, "now": uow.clock.now(), "id": complaint_id},
    )
    uow.emit(
        events.COMPLAINT_ANSWERED,
        complaint_id,
        events.ComplaintAnswered(
            complaint_id=complaint_id,
            number=current["number"],
            department_code=current["department_code"],
            answered_by=principal.subject,
            answered_on=today,
        ),
    )
    return await get(uow, principal, complaint_id)
