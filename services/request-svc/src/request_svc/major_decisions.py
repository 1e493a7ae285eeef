"""Shared data in a major decision (Beijing 004 Art.19: 用于重大决策的，应注明来源并征得提供部门同意): where the
profile asks for it (`cite_source_required`), the consumer cites the source of the data it holds a grant for
and asks the provider's consent through the platform; the provider consents, or refuses with a reason.
Each change and its event in one unit of work; supervision counts them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, Conflict, Forbidden, NotFound
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid

from request_svc import domain, events, store

_COLUMNS = (
    "id::text AS id, grant_id::text AS grant_id, consumer_code, provider_code, resource_code, title, description, "
    "source_citation, state, reason, requested_by, requested_at, answered_by, answered_at"
)
STATE_LABELS = {"pending": "待提供部门同意", "consented": "提供部门已同意", "refused": "提供部门不同意"}


def _ensure_in_profile(profile: Profile) -> None:
    if not profile.cite_source_required:
        raise AppError(
            "本辖区规定未要求使用共享数据进行重大决策时征得提供部门同意。",
            "This jurisdiction's rules ask no consent of the provider for major decisions.",
            code="major_decision_not_in_profile",
            status=409,
        )


def _shape(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["state_label"] = STATE_LABELS[d["state"]]
    return d


async def get(uow: UnitOfWork, principal: Principal, decision_id: str, *, lock: bool = False) -> dict[str, Any]:
    if not is_uuid(decision_id):
        raise NotFound("重大决策使用记录不存在。", "No such major decision.")
    row = (
        await uow.execute(
            text(
                f"SELECT {_COLUMNS} FROM major_decision WHERE id = CAST(:id AS uuid)" + (" FOR UPDATE" if lock else "")
            ),
            {"id": decision_id},
        )
    ).first()
    if row is None:
        raise NotFound("重大决策使用记录不存在。", "No such major decision.")
    found = _shape(row)
    if not principal.has("platform_admin", "auditor") and principal.department not in (
        found["consumer_code"],
        found["provider_code"],
    ):
        raise Forbidden("只能查看本部门的重大决策使用记录。", "Not your department's major decision.", code="not_yours")
    return found


async def ask(
    uow: UnitOfWork,
    principal: Principal,
    profile: Profile,
    *,
    grant_id: str,
    title: str,
    description: str,
    source_citation: str,
) -> dict[str, Any]:
    _ensure_in_profile(profile)
    g = await store.grant(uow.conn, grant_id)
    if g is None:
        raise NotFound("授权不存在。", "No such grant.")
    if principal.department != g["consumer_code"]:
        raise Forbidden(
            "只有被授权部门可以就使用该数据进行重大决策征求同意。",
            "Only the grant's consumer asks.",
            code="not_consumer",
        )
    if g["status"] != "active":
        raise Conflict("该授权已失效。", "The grant is no longer active.", code="grant_ended")
    decision_id = str(uuid.uuid4())
    await uow.execute(
        text(
            "INSERT INTO major_decision (id, grant_id, consumer_code, provider_code, resource_code, title, "
            "description, source_citation, state, requested_by, requested_at) VALUES (CAST(:id AS uuid), "
            "CAST(:g AS uuid), :c, :p, :r, :t, :d, :s, 'pending', :by, :at)"
        ),
        {
            "id": decision_id,
            "g": grant_id,
            "c": g["consumer_code"],
            "p": g["provider_code"],
            "r": g["resource_code"],
            "t": title,
            "d": description,
            "s": source_citation,
            "by": principal.subject,
            "at": uow.clock.now(),
        },
    )
    uow.emit(
        events.MAJOR_DECISION_REQUESTED,
        decision_id,
        events.MajorDecisionEvent(
            decision_id=decision_id,
            grant_id=grant_id,
            consumer_code=g["consumer_code"],
            provider_code=g["provider_code"],
            resource_code=g["resource_code"],
            state="pending",
            reason=None,
            actor=principal.subject,
        ),
    )
    return await get(uow, principal, decision_id)


async def answer(
    uow: UnitOfWork, principal: Principal, decision_id: str, *, decision: str, reason: str | None
) -> dict[str, Any]:
    found = await get(uow, principal, decision_id, lock=True)
    if principal.department != found["provider_code"]:
        raise Forbidden("只有提供部门可以答复。", "Only the provider answers.", code="not_provider")
    if found["state"] != "pending":
        raise Conflict("该事项已经答复。", "This was already answered.", code="already_answered")
    state = "consented" if decision == "consent" else "refused"
    why = domain.required_reason(reason) if state == "refused" else (reason or "").strip() or None
    await uow.execute(
        text(
            "UPDATE major_decision SET state = :s, reason = :r, answered_by = :by, answered_at = :at "
            "WHERE id = CAST(:id AS uuid)"
        ),
        {"s": state, "r": why, "by": principal.subject, "at": uow.clock.now(), "id": decision_id},
    )
    uow.emit(
        events.MAJOR_DECISION_CONSENTED if state == "consented" else events.MAJOR_DECISION_REFUSED,
        decision_id,
        events.MajorDecisionEvent(
            decision_id=decision_id,
            grant_id=found["grant_id"],
            consumer_code=found["consumer_code"],
            provider_code=found["provider_code"],
            resource_code=found["resource_code"],
            state=state,
            reason=why,
            actor=principal.subject,
        ),
    )
    return await get(uow, principal, decision_id)


async def listing(
    uow: UnitOfWork, *, department: str | None, state: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = ["true"]
    params: dict[str, Any] = {"l": limit, "o": offset}
    if department:
        where.append("(consumer_code = :d OR provider_code = :d)")
        params["d"] = department
    if state:
        where.append("state = :s")
        params["s"] = state
    clause = " AND ".join(where)
    total = (await uow.execute(text(f"SELECT count(*) FROM major_decision WHERE {clause}"), params)).scalar_one()
    rows = await uow.execute(
        text(f"SELECT {_COLUMNS} FROM major_decision WHERE {clause} ORDER BY requested_at DESC LIMIT :l OFFSET :o"),
        params,
    )
    return [_shape(r) for r in rows], int(total)
