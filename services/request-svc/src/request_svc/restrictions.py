"""Rights restrictions (001 Art.21, Feicheng): a department that did not provide or update its information on
the catalog's update cycle can have its rights restricted by the platform office — it files no new share
request — until the office lifts the restriction. The ground is the lapses learnt from events (a catalog
update overdue, hosted data stale); the department sees the restriction and its reason. Each change and its
event in one unit of work."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import Conflict, NotFound
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid

from request_svc import domain, events, jurisdictions

_COLUMNS = "id::text AS id, department_code, reason, lapses, imposed_by, imposed_at, lifted_by, lifted_at, lift_reason"


def _shape(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["lapses"] = d["lapses"] if not isinstance(d["lapses"], str) else json.loads(d["lapses"])
    d["in_force"] = d["lifted_at"] is None
    d["status_label"] = "限制中" if d["in_force"] else "已解除"
    return d


async def lapses(uow: UnitOfWork, department: str | None, *, limit: int, offset: int) -> tuple[list[Any], int]:
    where, params = ("WHERE department_code = :d", {"d": department}) if department else ("", {})
    total = (await uow.execute(text(f"SELECT count(*) FROM update_lapse {where}"), params)).scalar_one()
    rows = await uow.execute(
        text(
            "SELECT event_id::text AS event_id, department_code, kind, resource_code, description, occurred_at "
            f"FROM update_lapse {where} ORDER BY occurred_at DESC LIMIT :l OFFSET :o"
        ),
        {**params, "l": limit, "o": offset},
    )
    return [dict(r._mapping) for r in rows], int(total)


async def in_force(uow: UnitOfWork, department: str) -> dict[str, Any] | None:
    row = (
        await uow.execute(
            text(f"SELECT {_COLUMNS} FROM restriction WHERE department_code = :d AND lifted_at IS NULL"),
            {"d": department},
        )
    ).first()
    return _shape(row) if row is not None else None


async def ensure_may_apply(uow: UnitOfWork, department: str) -> None:
    """A restricted department files no new share request (the restriction is the right it loses)."""
    found = await in_force(uow, department)
    if found is not None:
        raise domain.rights_restricted(found["reason"], found["imposed_at"], found["id"])


async def get(uow: UnitOfWork, restriction_id: str, *, lock: bool = False) -> dict[str, Any]:
    if not is_uuid(restriction_id):
        raise NotFound("权益限制记录不存在。", "No such restriction.")
    row = (
        await uow.execute(
            text(f"SELECT {_COLUMNS} FROM restriction WHERE id = CAST(:id AS uuid)" + (" FOR UPDATE" if lock else "")),
            {"id": restriction_id},
        )
    ).first()
    if row is None:
        raise NotFound("权益限制记录不存在。", "No such restriction.")
    return _shape(row)


async def listing(
    uow: UnitOfWork, *, department: str | None, in_force_only: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = ["true"]
    params: dict[str, Any] = {"l": limit, "o": offset}
    if department:
        where.append("department_code = :d")
        params["d"] = department
    if in_force_only:
        where.append("lifted_at IS NULL")
    clause = " AND ".join(where)
    total = (await uow.execute(text(f"SELECT count(*) FROM restriction WHERE {clause}"), params)).scalar_one()
    rows = await uow.execute(
        text(f"SELECT {_COLUMNS} FROM restriction WHERE {clause} ORDER BY imposed_at DESC LIMIT :l OFFSET :o"),
        params,
    )
    return [_shape(r) for r in rows], int(total)


async def impose(
    uow: UnitOfWork, principal: Principal, *, department: str, reason: str, profile: Profile
) -> dict[str, Any]:
    # 001 Art.21 is the restricted department's own jurisdiction's rule (Feicheng's, where it is hosted).
    domain.ensure_sanctions_in_profile(await jurisdictions.department_profile(uow, profile, department))
    grounds, _ = await lapses(uow, department, limit=50, offset=0)
    domain.ensure_missed_update(grounds, department)
    if await in_force(uow, department) is not None:
        raise Conflict(
            "该部门的权益限制尚未解除。",
            "The department is already restricted.",
            code="already_restricted",
            details={"department_code": department},
        )
    restriction_id = str(uuid.uuid4())
    now = uow.clock.now()
    basis = [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in g.items() if k != "department_code"}
        for g in grounds
    ]
    await uow.execute(
        text(
            "INSERT INTO restriction (id, department_code, reason, lapses, imposed_by, imposed_at) "
            "VALUES (CAST(:id AS uuid), :d, :r, CAST(:l AS jsonb), :by, :at)"
        ),
        {
            "id": restriction_id,
            "d": department,
            "r": reason,
            "l": json.dumps(basis, ensure_ascii=False),
            "by": principal.subject,
            "at": now,
        },
    )
    uow.emit(
        events.RESTRICTION_IMPOSED,
        restriction_id,
        events.RestrictionEvent(
            restriction_id=restriction_id,
            department_code=department,
            reason=reason,
            lapses=len(basis),
            actor=principal.subject,
        ),
    )
    return await get(uow, restriction_id)


async def lift(uow: UnitOfWork, principal: Principal, restriction_id: str, *, reason: str) -> dict[str, Any]:
    found = await get(uow, restriction_id, lock=True)
    if not found["in_force"]:
        raise Conflict("该权益限制已经解除。", "The restriction is already lifted.", code="already_lifted")
    await uow.execute(
        text("UPDATE restriction SET lifted_by = :by, lifted_at = :at, lift_reason = :r WHERE id = CAST(:id AS uuid)"),
        {"by": principal.subject, "at": uow.clock.now(), "r": reason, "id": restriction_id},
    )
    uow.emit(
        events.RESTRICTION_LIFTED,
        restriction_id,
        events.RestrictionEvent(
            restriction_id=restriction_id,
            department_code=found["department_code"],
            reason=reason,
            lapses=len(found["lapses"]),
            actor=principal.subject,
        ),
    )
    return await get(uow, restriction_id)
