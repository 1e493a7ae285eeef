"""Subscriptions (数据订阅): a consumer's cursor over a resource's change log, read at its own pace.

The change log (record_change) is written by ingest in commit order per resource, so a subscriber reading after
its cursor sees every change once and in order per record; it acknowledges a cursor when it has stored what it
read (at least once: an unacknowledged read is served again). Ingest never waits for a subscriber.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import NotFound, ValidationFailed

from exchange_svc.domain.access import shape
from exchange_svc.events import SUBSCRIPTION_CANCELLED, SUBSCRIPTION_CREATED, SubscriptionChanged
from exchange_svc.guard import authorize, emit_access
from exchange_svc.queries import subject_shown
from exchange_svc.sealing import Sealer


async def head(uow: UnitOfWork, code: str) -> int:
    return int(
        (
            await uow.execute(
                text("SELECT coalesce(max(seq), 0) FROM record_change WHERE resource_code = :c"), {"c": code}
            )
        ).scalar_one()
    )


async def subscribe(
    uow: UnitOfWork,
    principal: Principal,
    *,
    code: str,
    purpose: str | None,
    from_start: bool,
    via_peer: str | None = None,
    sub_id: str | None = None,
) -> dict[str, Any]:
    """`via_peer`: a peer platform subscribes for one of its departments, by the grant that department holds here
    through it; `sub_id` (derived from its idempotency key) makes its retry answer the subscription it made."""
    resource, _ = await authorize(uow, principal, code, purpose, via_peer=via_peer)
    assert purpose is not None or principal.department == resource.provider_code
    if sub_id is not None:
        made = (
            await uow.execute(
                text("SELECT * FROM subscription WHERE id = :id AND department_code = :d"),
                {"id": sub_id, "d": principal.department},
            )
        ).one_or_none()
        if made is not None:
            return {
                "id": sub_id,
                "resource_code": made.resource_code,
                "cursor": made.cursor,
                "status": made.status,
                "created_at": made.created_at,
            }
    sub_id = sub_id or str(uuid.uuid4())
    cursor = 0 if from_start else await head(uow, code)
    now = uow.clock.now()
    await uow.execute(
        text(
            "INSERT INTO subscription (id, resource_code, department_code, principal, purpose, cursor, status, "
            "created_at) VALUES (:id, :c, :d, :p, :purpose, :cursor, 'active', :at)"
        ),
        {
            "id": sub_id,
            "c": code,
            "d": principal.department,
            "p": principal.subject,
            "purpose": purpose or "provider",
            "cursor": cursor,
            "at": now,
        },
    )
    uow.emit(
        SUBSCRIPTION_CREATED,
        sub_id,
        SubscriptionChanged(
            subscription_id=sub_id,
            resource_code=code,
            department_code=principal.department or "",
            purpose=purpose or "provider",
            state="active",
        ),
    )
    return {"id": sub_id, "resource_code": code, "cursor": cursor, "status": "active", "created_at": now}


async def _subscription(
    uow: UnitOfWork, principal: Principal, code: str, sub_id: str, *, lock: bool = False, via_peer: str | None = None
) -> Any:
    row = None
    try:
        uuid.UUID(sub_id)
    except ValueError:
        pass
    else:
        row = (
            await uow.execute(
                text(
                    "SELECT * FROM subscription WHERE id = :id AND resource_code = :c" + (" FOR UPDATE" if lock else "")
                ),
                {"id": sub_id, "c": code},
            )
        ).one_or_none()
    # A peer's subscription is used only through that peer, a department's here only here.
    made_by_peer = row is not None and row.principal.startswith(f"peer:{via_peer}:" if via_peer else "peer:")
    if (
        row is None
        or row.department_code != principal.department
        or row.status != "active"
        or made_by_peer != (via_peer is not None)
    ):
        raise NotFound("订阅不存在或已取消。", "No such active subscription.", code="unknown_subscription")
    return row


async def read(
    uow: UnitOfWork,
    principal: Principal,
    *,
    code: str,
    sub_id: str,
    purpose: str | None,
    after: int | None,
    limit: int,
    hash_key: bytes,
    sealer: Sealer,
    via_peer: str | None = None,
) -> dict[str, Any]:
    sub = await _subscription(uow, principal, code, sub_id, via_peer=via_peer)
    resource, decision = await authorize(uow, principal, code, purpose, via_peer=via_peer)
    seal = sealer.for_resource(resource)
    cursor = sub.cursor if after is None else after
    granted = list(decision.items)
    # An update that touched only items outside the grant is nothing the subscriber may see.
    where = "resource_code = :c AND seq > :after AND (op <> 'update' OR changed_items && CAST(:granted AS text[]))"
    params = {"c": code, "after": cursor, "granted": granted, "limit": limit}
    total = (await uow.execute(text(f"SELECT count(*) FROM record_change WHERE {where}"), params)).scalar_one()
    rows = (
        await uow.execute(
            text(
                "SELECT seq, record_key, subject, op, changed_items, after, batch_id, at FROM record_change "
                f"WHERE {where} ORDER BY seq LIMIT :limit"
            ),
            params,
        )
    ).all()
    key_shown = all(k in decision.unmasked for k in resource.key_items)
    items = [
        {
            "seq": r.seq,
            "op": r.op,
            "key": seal.open_key(r.record_key) if key_shown else None,
            "subject": subject_shown(resource, seal.open_subject(r.subject), decision),
            "changed_items": [i for i in r.changed_items if i in decision.items],
            "data": shape(seal.open(r.after), resource, decision) if r.after is not None else None,
            "batch_id": r.batch_id,
            "at": r.at,
        }
        for r in rows
    ]
    if items:
        emit_access(
            uow,
            kind="feed",
            principal=principal,
            resource=resource,
            decision=decision,
            purpose=purpose,
            rows=len(items),
            subjects=[seal.open_subject(r.subject) for r in rows],
            hash_key=hash_key,
        )
    return {
        "items": items,
        "total": total,
        "limit": limit,
        "offset": 0,
        "cursor": cursor,
        "next_cursor": items[-1]["seq"] if items else cursor,
        "grant_id": decision.grant_id,
        "masked_items": [n for n in decision.items if n not in decision.unmasked],
    }


async def acknowledge(
    uow: UnitOfWork, principal: Principal, *, code: str, sub_id: str, cursor: int, via_peer: str | None = None
) -> dict[str, Any]:
    sub = await _subscription(uow, principal, code, sub_id, lock=True, via_peer=via_peer)
    if cursor < sub.cursor or cursor > await head(uow, code):
        raise ValidationFailed(
            "确认位置须介于当前位置与最新变更之间。",
            "The acknowledged cursor must lie between the current one and the newest change.",
            code="bad_cursor",
            details={"cursor": sub.cursor},
        )
    await uow.execute(
        text("UPDATE subscription SET cursor = :cursor, acked_at = :at WHERE id = :id"),
        {"cursor": cursor, "at": uow.clock.now(), "id": sub_id},
    )
    return {"id": sub_id, "cursor": cursor}


async def cancel(
    uow: UnitOfWork, principal: Principal, *, code: str, sub_id: str, via_peer: str | None = None
) -> dict[str, Any]:
    sub = await _subscription(uow, principal, code, sub_id, lock=True, via_peer=via_peer)
    await uow.execute(text("UPDATE subscription SET status = 'cancelled' WHERE id = :id"), {"id": sub_id})
    uow.emit(
        SUBSCRIPTION_CANCELLED,
        sub_id,
        SubscriptionChanged(
            subscription_id=sub_id,
            resource_code=code,
            department_code=sub.department_code,
            purpose=sub.purpose,
            state="cancelled",
        ),
    )
    return {"id": sub_id, "status": "cancelled"}


async def mine(uow: UnitOfWork, principal: Principal, *, limit: int, offset: int) -> dict[str, Any]:
    params = {"d": principal.department, "limit": limit, "offset": offset}
    total = (
        await uow.execute(text("SELECT count(*) FROM subscription WHERE department_code = :d"), params)
    ).scalar_one()
    rows = await uow.execute(
        text(
            "SELECT id, resource_code, purpose, cursor, status, created_at, acked_at FROM subscription "
            "WHERE department_code = :d ORDER BY created_at DESC LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    return {"items": [dict(r._mapping) for r in rows], "total": total, "limit": limit, "offset": offset}
