"""Single source (一数一源, R2.1): each item of a base resource has one authoritative provider, declared by the
platform office; a differing value from another provider opens a conflict the platform office arbitrates by
choosing the value (authoritative or candidate) and, if it so decides, making the candidate the item's source.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import Conflict, NotFound, ValidationFailed
from govshare_common.identifiers import hash_identifier
from govshare_common.record_ids import is_uuid

from exchange_svc.events import CONFLICT_ARBITRATED, SOURCE_DECLARED, ConflictEvent, SourceDeclared
from exchange_svc.guard import require_resource
from exchange_svc.ingest import lock_resource
from exchange_svc.sealing import ResourceSeal, Sealer


async def declare_source(
    uow: UnitOfWork, principal: Principal, *, code: str, item: str, provider: str
) -> dict[str, Any]:
    resource = await require_resource(uow, code)
    if resource.resource_class != "base":
        raise ValidationFailed(
            "一数一源只适用于基础信息资源。", "Single source applies to base resources.", code="not_base_resource"
        )
    if resource.item(item) is None or item in resource.key_items:
        raise ValidationFailed(
            "须为该资源的信息项（记录主键除外）。",
            "Name a data item of the resource other than its key.",
            code="unknown_item",
            details={"item": item},
        )
    now = uow.clock.now()
    await uow.execute(
        text(
            "INSERT INTO item_source (resource_code, item, provider_code, declared_by, declared_at) "
            "VALUES (:c, :i, :p, :by, :at) ON CONFLICT (resource_code, item) DO UPDATE SET "
            "provider_code = excluded.provider_code, declared_by = excluded.declared_by, "
            "declared_at = excluded.declared_at"
        ),
        {"c": code, "i": item, "p": provider, "by": principal.subject, "at": now},
    )
    uow.emit(
        SOURCE_DECLARED,
        code,
        SourceDeclared(resource_code=code, item=item, provider_code=provider, actor=principal.subject),
    )
    return {"resource_code": code, "item": item, "provider_code": provider, "declared_at": now}


async def sources(uow: UnitOfWork, *, code: str) -> dict[str, Any]:
    resource = await require_resource(uow, code)
    rows = await uow.execute(text("SELECT item, provider_code FROM item_source WHERE resource_code = :c"), {"c": code})
    declared = {r.item: r.provider_code for r in rows}
    items = [
        {"item": n, "provider_code": declared.get(n, resource.provider_code), "declared": n in declared}
        for n in resource.item_names
    ]
    return {"items": items, "total": len(items), "limit": len(items), "offset": 0}


def _conflict_view(r: Any, sealer: Sealer) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "resource_code": r.resource_code,
        "record_key": sealer.open_token(r.record_key),
        "item": r.item,
        "authoritative_provider": r.authoritative_provider,
        "authoritative_value": sealer.open_value(r.resource_code, r.item, r.authoritative_value),
        "candidate_provider": r.candidate_provider,
        "candidate_value": sealer.open_value(r.resource_code, r.item, r.candidate_value),
        "batch_id": r.batch_id,
        "state": r.state,
        "opened_at": r.opened_at,
        "decision": r.decision,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at,
        "comment": r.comment,
    }


async def listing(
    uow: UnitOfWork, principal: Principal, *, state: str | None, limit: int, offset: int, sealer: Sealer
) -> dict[str, Any]:
    where, params = "true", {"limit": limit, "offset": offset, "d": principal.department, "s": state}
    if not principal.has("platform_admin"):
        where = "(authoritative_provider = :d OR candidate_provider = :d)"
    if state:
        where += " AND state = :s"
    total = (await uow.execute(text(f"SELECT count(*) FROM conflict WHERE {where}"), params)).scalar_one()
    rows = await uow.execute(
        text(f"SELECT * FROM conflict WHERE {where} ORDER BY opened_at, id LIMIT :limit OFFSET :offset"), params
    )
    return {"items": [_conflict_view(r, sealer) for r in rows], "total": total, "limit": limit, "offset": offset}


async def arbitrate(
    uow: UnitOfWork,
    principal: Principal,
    *,
    conflict_id: str,
    choose: str,
    make_source: bool,
    comment: str | None,
    hash_key: bytes,
    sealer: Sealer,
) -> dict[str, Any]:
    if not is_uuid(conflict_id):
        raise NotFound("冲突不存在。", "No such conflict.")
    row = (await uow.execute(text("SELECT * FROM conflict WHERE id = :id"), {"id": conflict_id})).one_or_none()
    if row is None:
        raise NotFound("冲突不存在。", "No such conflict.")
    await lock_resource(uow, row.resource_code)
    row = (await uow.execute(text("SELECT * FROM conflict WHERE id = :id FOR UPDATE"), {"id": conflict_id})).one()
    if row.state != "open":
        raise Conflict("该冲突已裁决。", "The conflict is already decided.", code="conflict_decided")
    now = uow.clock.now()
    seal = sealer.for_resource(await require_resource(uow, row.resource_code))
    if choose == "candidate":
        record = (
            await uow.execute(
                text(
                    "SELECT data, subject, version FROM record WHERE resource_code = :c AND record_key = :k FOR UPDATE"
                ),
                {"c": row.resource_code, "k": row.record_key},
            )
        ).one_or_none()
        candidate = seal.open_value(row.item, row.candidate_value)
        before = seal.open(record.data) if record is not None else {}
        if record is not None and before.get(row.item) != candidate:
            await set_record_item(
                uow,
                seal=seal,
                code=row.resource_code,
                key=row.record_key,
                subject=record.subject,
                before=before,
                item=row.item,
                value=candidate,
                source=f"arbitration:{conflict_id}",
                provider=row.candidate_provider,
            )
    if make_source:
        await declare_source(uow, principal, code=row.resource_code, item=row.item, provider=row.candidate_provider)
    decision = f"{choose}{'+source' if make_source else ''}"
    await uow.execute(
        text(
            "UPDATE conflict SET state = 'arbitrated', decision = :d, decided_by = :by, decided_at = :at, "
            "comment = :comment WHERE id = :id"
        ),
        {"d": decision, "by": principal.subject, "at": now, "comment": comment, "id": conflict_id},
    )
    uow.emit(
        CONFLICT_ARBITRATED,
        conflict_id,
        ConflictEvent(
            conflict_id=conflict_id,
            resource_code=row.resource_code,
            item=row.item,
            subject_hashed=hash_identifier(seal.open_key(row.record_key), key=hash_key),
            state="arbitrated",
            authoritative_provider=row.authoritative_provider,
            candidate_provider=row.candidate_provider,
            decision=decision,
        ),
    )
    done = (await uow.execute(text("SELECT * FROM conflict WHERE id = :id"), {"id": conflict_id})).one()
    return _conflict_view(done, sealer)


async def set_record_item(
    uow: UnitOfWork,
    *,
    seal: ResourceSeal,
    code: str,
    key: str,
    subject: str | None,
    before: dict[str, Any],
    item: str,
    value: Any,
    source: str,
    provider: str,
) -> None:
    """Change one item of a record outside a batch (arbitration, dispute correction), logged in the same change
    log subscribers read. `key` and `subject` as stored; `before` opened."""
    after = {**before, item: value}
    now = uow.clock.now()
    await uow.execute(
        text(
            "UPDATE record SET data = CAST(:d AS jsonb), version = version + 1, updated_at = :at, "
            "updated_by_batch = NULL WHERE resource_code = :c AND record_key = :k"
        ),
        {"d": json.dumps(seal.seal(after), ensure_ascii=False), "at": now, "c": code, "k": key},
    )
    await uow.execute(
        text(
            "INSERT INTO record_change (resource_code, record_key, subject, op, changed_items, before, after, batch_id, "
            "source, provider_code, at) VALUES (:c, :k, :s, 'update', :items, CAST(:before AS jsonb), "
            "CAST(:after AS jsonb), NULL, :source, :p, :at)"
        ),
        {
            "c": code,
            "k": key,
            "s": subject,
            "items": [item],
            "before": json.dumps(seal.seal(before), ensure_ascii=False),
            "after": json.dumps(seal.seal(after), ensure_ascii=False),
            "source": source,
            "p": provider,
            "at": now,
        },
    )
