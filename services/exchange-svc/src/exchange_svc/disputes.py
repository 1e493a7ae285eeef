"""Disputes (疑义、错误数据校核): a consumer flags a record's item; the provider confirms or corrects it within
the profile's working days; the record is marked disputed meanwhile; a late answer is overdue (a job).

Owns the dispute's lifecycle and its events; the rules are in domain.disputes, the deadline from the service's
working-day calendar (CalendarService), never weekday arithmetic.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.calendar_store import CalendarService
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import Forbidden, NotFound, ValidationFailed
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid
from govshare_common.workdays import WorkingCalendar, recounted_deadline

from exchange_svc.conflicts import set_record_item
from exchange_svc.domain.disputes import ensure_answerable, is_overdue
from exchange_svc.domain.validation import BadValue, normalise
from exchange_svc.events import (
    DISPUTE_ANSWERED,
    DISPUTE_CORRECTED,
    DISPUTE_DEADLINE_MOVED,
    DISPUTE_OPENED,
    DISPUTE_OVERDUE,
    DisputeDeadlineMoved,
    DisputeEvent,
)
from exchange_svc.guard import authorize, require_resource
from exchange_svc.ingest import lock_resource
from exchange_svc.sealing import Sealer


def _emit(uow: UnitOfWork, type_: str, row: Any, state: str) -> None:
    uow.emit(
        type_,
        str(row.id),
        DisputeEvent(
            dispute_id=str(row.id),
            resource_code=row.resource_code,
            provider_code=row.provider_code,
            consumer_code=row.consumer_code,
            state=state,
            due_date=row.due_date,
            item=row.item,
            copied_to_authority=row.copied_to_authority,
        ),
    )


def _view(r: Any, sealer: Sealer) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "resource_code": r.resource_code,
        "provider_code": r.provider_code,
        "consumer_code": r.consumer_code,
        "record_key": sealer.open_token(r.record_key),
        "item": r.item,
        "reason": r.reason,
        "state": r.state,
        "copied_to_authority": r.copied_to_authority,
        "opened_on": r.opened_on,
        "due_date": r.due_date,
        "answered_at": r.answered_at,
        "answer": r.answer,
        "corrected_value": sealer.open_value(r.resource_code, r.item, r.corrected_value),
    }


async def _get(uow: UnitOfWork, dispute_id: str, *, lock: bool = False) -> Any:
    if not is_uuid(dispute_id):
        raise NotFound("疑义不存在。", "No such dispute.")
    row = (
        await uow.execute(
            text("SELECT * FROM dispute WHERE id = :id" + (" FOR UPDATE" if lock else "")), {"id": dispute_id}
        )
    ).one_or_none()
    if row is None:
        raise NotFound("疑义不存在。", "No such dispute.")
    return row


async def open_dispute(
    uow: UnitOfWork,
    principal: Principal,
    *,
    code: str,
    purpose: str | None,
    key: str | None,
    subject: str | None,
    item: str,
    reason: str,
    calendar: CalendarService,
    profile: Profile,
    sealer: Sealer,
) -> dict[str, Any]:
    resource, decision = await authorize(uow, principal, code, purpose)
    seal = sealer.for_resource(resource)
    if decision.provider:
        raise ValidationFailed("提供部门请直接更正本部门数据。", "A provider corrects its own data directly.")
    if item not in decision.items:
        raise ValidationFailed(
            "只能对授权范围内的信息项提出疑义。", "Dispute only items your grant covers.", code="item_not_granted"
        )
    where, params = (
        "resource_code = :c AND ",
        {
            "c": code,
            "k": seal.key_lookups([key or ""]),
            "s": seal.subject_lookups([(subject or "").strip().upper()]),
        },
    )
    where += "record_key = ANY(:k)" if key else "subject = ANY(:s)"
    rows = (await uow.execute(text(f"SELECT record_key FROM record WHERE {where} LIMIT 2"), params)).all()
    if len(rows) != 1:
        raise NotFound(
            "没有找到唯一对应的记录，请提供记录主键。",
            "No single record matches; give its record key.",
            code="record_not_found",
        )
    opened_on = china_date(uow.clock)
    deadline = await calendar.add_working_days(uow, opened_on, profile.dispute_reply_wd, purpose="dispute reply")
    dispute_id = str(uuid.uuid4())
    await uow.execute(
        text(
            "INSERT INTO dispute (id, resource_code, provider_code, consumer_code, record_key, item, reason, raised_by, "
            "state, copied_to_authority, opened_on, due_date, opened_at) VALUES (:id, :c, :p, :d, :k, :i, :r, :by, "
            "'open', :copy, :on, :due, :at)"
        ),
        {
            "id": dispute_id,
            "c": code,
            "p": resource.provider_code,
            "d": principal.department,
            "k": rows[0].record_key,
            "i": item,
            "r": reason,
            "by": principal.subject,
            "copy": profile.dispute_copies_authority or profile.dispute_handled_by_platform,
            "on": opened_on,
            "due": deadline.due,
            "at": uow.clock.now(),
        },
    )
    row = await _get(uow, dispute_id)
    _emit(uow, DISPUTE_OPENED, row, "open")
    return _view(row, sealer)


def _visible(principal: Principal, row: Any) -> bool:
    if principal.department in (row.provider_code, row.consumer_code):
        return True
    return principal.has("platform_admin") and bool(row.copied_to_authority)


async def detail(uow: UnitOfWork, principal: Principal, dispute_id: str, sealer: Sealer) -> dict[str, Any]:
    row = await _get(uow, dispute_id)
    if not _visible(principal, row):
        raise NotFound("疑义不存在。", "No such dispute.")
    return _view(row, sealer)


async def listing(
    uow: UnitOfWork, principal: Principal, *, state: str | None, limit: int, offset: int, sealer: Sealer
) -> dict[str, Any]:
    where = "(provider_code = :d OR consumer_code = :d"
    where += " OR copied_to_authority)" if principal.has("platform_admin") else ")"
    params: dict[str, Any] = {"d": principal.department, "s": state, "limit": limit, "offset": offset}
    if state:
        where += " AND state = :s"
    total = (await uow.execute(text(f"SELECT count(*) FROM dispute WHERE {where}"), params)).scalar_one()
    rows = await uow.execute(
        text(f"SELECT * FROM dispute WHERE {where} ORDER BY due_date, opened_at LIMIT :limit OFFSET :offset"), params
    )
    return {"items": [_view(r, sealer) for r in rows], "total": total, "limit": limit, "offset": offset}


async def _provider_row(uow: UnitOfWork, principal: Principal, dispute_id: str) -> Any:
    row = await _get(uow, dispute_id, lock=True)
    if principal.department != row.provider_code:
        raise Forbidden("只有提供部门可以答复疑义。", "Only the provider answers a dispute.", code="not_own_resource")
    ensure_answerable(row.state)
    return row


async def confirm(
    uow: UnitOfWork, principal: Principal, *, dispute_id: str, answer: str, sealer: Sealer
) -> dict[str, Any]:
    row = await _provider_row(uow, principal, dispute_id)
    await uow.execute(
        text("UPDATE dispute SET state = 'answered', answered_at = :at, answered_by = :by, answer = :a WHERE id = :id"),
        {"at": uow.clock.now(), "by": principal.subject, "a": answer, "id": dispute_id},
    )
    row = await _get(uow, dispute_id)
    _emit(uow, DISPUTE_ANSWERED, row, "answered")
    return _view(row, sealer)


async def correct(
    uow: UnitOfWork, principal: Principal, *, dispute_id: str, value: Any, answer: str, sealer: Sealer
) -> dict[str, Any]:
    row = await _provider_row(uow, principal, dispute_id)
    resource = await require_resource(uow, row.resource_code)
    item = resource.item(row.item)
    if item is None or row.item in resource.key_items:
        raise ValidationFailed("该信息项不能在此更正。", "This item cannot be corrected here.")
    try:
        normalised, _ = normalise(item, value, today=china_date(uow.clock))
    except BadValue as exc:
        raise ValidationFailed(
            f"更正值不正确：{item.label}{exc.zh}",
            f"The corrected value {exc.en}",
            details={"fields": [{"field": "value", "code": exc.code, "message": exc.zh, "message_en": exc.en}]},
        ) from None
    await lock_resource(uow, row.resource_code)
    record = (
        await uow.execute(
            text("SELECT data, subject FROM record WHERE resource_code = :c AND record_key = :k FOR UPDATE"),
            {"c": row.resource_code, "k": row.record_key},
        )
    ).one_or_none()
    if record is None:
        raise NotFound("该记录已删除。", "The record was deleted.", code="record_not_found")
    now = uow.clock.now()
    seal = sealer.for_resource(resource)
    await set_record_item(
        uow,
        seal=seal,
        code=row.resource_code,
        key=row.record_key,
        subject=record.subject,
        before=seal.open(record.data),
        item=row.item,
        value=normalised,
        source=f"dispute:{dispute_id}",
        provider=row.provider_code,
    )
    await uow.execute(
        text(
            "UPDATE dispute SET state = 'corrected', answered_at = :at, answered_by = :by, answer = :a, "
            "corrected_value = CAST(:v AS jsonb) WHERE id = :id"
        ),
        {
            "at": now,
            "by": principal.subject,
            "a": answer,
            "v": json.dumps(seal.seal_value(row.item, normalised), ensure_ascii=False),
            "id": dispute_id,
        },
    )
    row = await _get(uow, dispute_id)
    _emit(uow, DISPUTE_CORRECTED, row, "corrected")
    return _view(row, sealer)


async def mark_overdue(uow: UnitOfWork) -> None:
    """The job: open disputes past their due date become overdue (still answerable)."""
    today = china_date(uow.clock)
    rows = (
        await uow.execute(
            text("SELECT * FROM dispute WHERE state = 'open' AND due_date < :today FOR UPDATE SKIP LOCKED"),
            {"today": today},
        )
    ).all()
    for row in rows:
        if not is_overdue(row.state, row.due_date, today):
            continue
        await uow.execute(text("UPDATE dispute SET state = 'overdue' WHERE id = :id"), {"id": row.id})
        _emit(uow, DISPUTE_OVERDUE, row, "overdue")


async def recount(uow: UnitOfWork, before: WorkingCalendar, after: WorkingCalendar, *, year: int) -> int:
    """A year's holidays entered or corrected: every open dispute's due date counted again on the new calendar
    (`recounted_deadline`), each move an event. Returns how many moved."""
    today = china_date(uow.clock)
    rows = (
        await uow.execute(
            text("SELECT * FROM dispute WHERE state = 'open' AND due_date > :today FOR UPDATE"), {"today": today}
        )
    ).all()
    moved = 0
    for row in rows:
        new_due = recounted_deadline(before, after, today=today, due=row.due_date)
        if new_due == row.due_date:
            continue
        await uow.execute(text("UPDATE dispute SET due_date = :due WHERE id = :id"), {"due": new_due, "id": row.id})
        uow.emit(
            DISPUTE_DEADLINE_MOVED,
            str(row.id),
            DisputeDeadlineMoved(
                dispute_id=str(row.id),
                resource_code=row.resource_code,
                provider_code=row.provider_code,
                consumer_code=row.consumer_code,
                state=row.state,
                due_date=new_due,
                item=row.item,
                copied_to_authority=row.copied_to_authority,
                previous_due_date=row.due_date,
                calendar_year=year,
            ),
        )
        moved += 1
    return moved
