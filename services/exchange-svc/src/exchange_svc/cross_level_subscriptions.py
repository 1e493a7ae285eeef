"""Cross-level subscription (issue 16 item 5): a department subscribes at home to a resource another platform
owns; this service keeps the subscription at the owner for it (a signed call) and reads its changes there by
signed calls, at the department's pace.

The owner holds what matters: its ordinary subscription (`feeds`) for the peer's department, whose cursor is the
one truth of what was read and acknowledged, and its grant, checked at every read, so its changes arrive in order,
at least once and resumably (a read not acknowledged is served again), masked by its grant, and a revocation
there refuses the very next read. A platform away on either side loses nothing: the cursor waits at the owner.
Each side writes its own `exchange.access` for every read that served changes (here basis `cross_level`).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, NotFound
from govshare_common.peer_client import PeerClient

from exchange_svc import feeds
from exchange_svc.events import (
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_CREATED,
    SubscriptionChanged,
)
from exchange_svc.owner_calls import (
    call_owner,
    owner_of,
    peer_principal,
    record_cross_level_access,
    registered_owner,
    subjects_in_clear,
)
from exchange_svc.sealing import Sealer

PEER_SUBSCRIPTIONS_PATH = "/api/v1/exchange/federation/peer-subscriptions"
# The owner's subscription made for an idempotency key is always the same one, so a retried call makes nothing twice.
_OWNER_IDS = uuid.UUID("8f0d5a52-1f7e-4c53-9a57-3c7e1d3f6b10")


# --- at the consumer's platform ---------------------------------------------------------------------------


async def subscribe(
    uow: UnitOfWork,
    principal: Principal,
    client: PeerClient | None,
    *,
    code: str,
    purpose: str | None,
    from_start: bool,
) -> dict[str, Any]:
    owner = await owner_of(uow, client, code)
    assert client is not None
    sub_id = str(uuid.uuid4())
    made = await call_owner(
        client,
        owner.peer,
        "POST",
        PEER_SUBSCRIPTIONS_PATH,
        idempotency_key=f"subscription-{sub_id}",
        body={
            "resource": owner.origin_code,
            "consumer": principal.department or "",
            "principal": principal.subject,
            "purpose": purpose,
            "from_start": from_start,
        },
    )
    now = uow.clock.now()
    await uow.execute(
        text(
            "INSERT INTO cross_level_subscription (id, resource_code, origin_platform, origin_subscription_id, "
            "department_code, principal, purpose, cursor, status, created_at) VALUES (:id, :c, :o, :oid, :d, :p, "
            ":purpose, :cursor, 'active', :at)"
        ),
        {
            "id": sub_id,
            "c": code,
            "o": owner.division,
            "oid": str(made["id"]),
            "d": principal.department,
            "p": principal.subject,
            "purpose": purpose or "",
            "cursor": int(made["cursor"]),
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
            purpose=purpose or "",
            state="active",
            origin_platform=owner.division,
        ),
    )
    return {
        "id": sub_id,
        "resource_code": code,
        "origin_platform": owner.division,
        "cursor": int(made["cursor"]),
        "status": "active",
        "created_at": now,
    }


async def _own(uow: UnitOfWork, principal: Principal, sub_id: str, *, lock: bool = False) -> Any:
    row = None
    try:
        uuid.UUID(sub_id)
    except ValueError:
        pass
    else:
        row = (
            await uow.execute(
                text("SELECT * FROM cross_level_subscription WHERE id = :id" + (" FOR UPDATE" if lock else "")),
                {"id": sub_id},
            )
        ).one_or_none()
    if row is None or row.department_code != principal.department or row.status != "active":
        raise NotFound("订阅不存在或已取消。", "No such active subscription.", code="unknown_subscription")
    return row


def _at_owner(sub: Any, action: str = "", **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{PEER_SUBSCRIPTIONS_PATH}/{quote(sub.origin_subscription_id)}{action}" + (f"?{query}" if query else "")


async def read(
    uow: UnitOfWork,
    principal: Principal,
    client: PeerClient | None,
    *,
    sub_id: str,
    after: int | None,
    limit: int,
    hash_key: bytes,
) -> dict[str, Any]:
    sub = await _own(uow, principal, sub_id)
    peer = await registered_owner(uow, client, sub.origin_platform)
    assert client is not None
    served = await call_owner(
        client,
        peer,
        "GET",
        _at_owner(
            sub,
            "/changes",
            consumer=sub.department_code,
            principal=principal.subject,
            purpose=sub.purpose or None,
            after=after,
            limit=limit,
        ),
        idempotency_key=uuid.uuid4().hex,
    )
    items = list(served.get("items") or [])
    if items:
        record_cross_level_access(
            uow,
            principal,
            kind="feed",
            resource_code=sub.resource_code,
            purpose=sub.purpose or None,
            rows=len(items),
            subjects=subjects_in_clear([i.get("subject") for i in items]),
            grant_id=served.get("grant_id"),
            origin=sub.origin_platform,
            via=None,
            hash_key=hash_key,
        )
    return {**served, "id": sub_id, "resource_code": sub.resource_code, "origin_platform": sub.origin_platform}


async def acknowledge(
    uow: UnitOfWork, principal: Principal, client: PeerClient | None, *, sub_id: str, cursor: int
) -> dict[str, Any]:
    sub = await _own(uow, principal, sub_id, lock=True)
    peer = await registered_owner(uow, client, sub.origin_platform)
    assert client is not None
    await call_owner(
        client,
        peer,
        "POST",
        _at_owner(sub, "/ack"),
        idempotency_key=uuid.uuid4().hex,
        body={"consumer": sub.department_code, "cursor": cursor},
    )
    await uow.execute(
        text("UPDATE cross_level_subscription SET cursor = :cursor, acked_at = :at WHERE id = :id"),
        {"cursor": cursor, "at": uow.clock.now(), "id": sub_id},
    )
    return {"id": sub_id, "cursor": cursor}


async def cancel(uow: UnitOfWork, principal: Principal, client: PeerClient | None, *, sub_id: str) -> dict[str, Any]:
    """Cancelled at the owner first (so its feed stops serving it), then here; one the owner no longer has
    (cancelled there already) is cancelled here all the same."""
    sub = await _own(uow, principal, sub_id, lock=True)
    peer = await registered_owner(uow, client, sub.origin_platform)
    assert client is not None
    try:
        await call_owner(
            client,
            peer,
            "DELETE",
            _at_owner(sub, consumer=sub.department_code),
            idempotency_key=f"cancel-{sub_id}",
        )
    except AppError as exc:
        if exc.code != "unknown_subscription":
            raise
    await uow.execute(text("UPDATE cross_level_subscription SET status = 'cancelled' WHERE id = :id"), {"id": sub_id})
    uow.emit(
        SUBSCRIPTION_CANCELLED,
        sub_id,
        SubscriptionChanged(
            subscription_id=sub_id,
            resource_code=sub.resource_code,
            department_code=sub.department_code,
            purpose=sub.purpose,
            state="cancelled",
            origin_platform=sub.origin_platform,
        ),
    )
    return {"id": sub_id, "status": "cancelled"}


async def mine(uow: UnitOfWork, principal: Principal, *, limit: int, offset: int) -> dict[str, Any]:
    params = {"d": principal.department, "limit": limit, "offset": offset}
    total = (
        await uow.execute(text("SELECT count(*) FROM cross_level_subscription WHERE department_code = :d"), params)
    ).scalar_one()
    rows = await uow.execute(
        text(
            "SELECT id, resource_code, origin_platform, purpose, cursor, status, created_at, acked_at "
            "FROM cross_level_subscription WHERE department_code = :d ORDER BY created_at DESC "
            "LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    return {"items": [dict(r._mapping) for r in rows], "total": total, "limit": limit, "offset": offset}


# --- at the owner's platform ------------------------------------------------------------------------------


async def answer_subscribe(
    uow: UnitOfWork,
    peer: dict[str, Any],
    *,
    idempotency_key: str,
    resource: str,
    consumer: str,
    asker: str,
    purpose: str | None,
    from_start: bool,
) -> dict[str, Any]:
    """The peer's department subscribes here, by the grant it holds here through that peer."""
    return await feeds.subscribe(
        uow,
        peer_principal(peer, consumer, asker),
        code=resource,
        purpose=purpose,
        from_start=from_start,
        via_peer=peer["division_code"],
        sub_id=str(uuid.uuid5(_OWNER_IDS, f"{peer['division_code']}:{idempotency_key}")),
    )


async def _peer_subscription(uow: UnitOfWork, sub_id: str) -> str:
    """The resource of one of this platform's subscriptions (the owner checks whose it is in `feeds`)."""
    row = None
    try:
        uuid.UUID(sub_id)
    except ValueError:
        pass
    else:
        row = (
            await uow.execute(text("SELECT resource_code FROM subscription WHERE id = :id"), {"id": sub_id})
        ).one_or_none()
    if row is None:
        raise NotFound("订阅不存在或已取消。", "No such active subscription.", code="unknown_subscription")
    return str(row.resource_code)


async def answer_read(
    uow: UnitOfWork,
    peer: dict[str, Any],
    *,
    sub_id: str,
    consumer: str,
    asker: str,
    purpose: str | None,
    after: int | None,
    limit: int,
    hash_key: bytes,
    sealer: Sealer,
) -> dict[str, Any]:
    return await feeds.read(
        uow,
        peer_principal(peer, consumer, asker),
        code=await _peer_subscription(uow, sub_id),
        sub_id=sub_id,
        purpose=purpose,
        after=after,
        limit=limit,
        hash_key=hash_key,
        sealer=sealer,
        via_peer=peer["division_code"],
    )


async def answer_ack(
    uow: UnitOfWork, peer: dict[str, Any], *, sub_id: str, consumer: str, cursor: int
) -> dict[str, Any]:
    return await feeds.acknowledge(
        uow,
        peer_principal(peer, consumer, "ack"),
        code=await _peer_subscription(uow, sub_id),
        sub_id=sub_id,
        cursor=cursor,
        via_peer=peer["division_code"],
    )


async def answer_cancel(uow: UnitOfWork, peer: dict[str, Any], *, sub_id: str, consumer: str) -> dict[str, Any]:
    return await feeds.cancel(
        uow,
        peer_principal(peer, consumer, "cancel"),
        code=await _peer_subscription(uow, sub_id),
        sub_id=sub_id,
        via_peer=peer["division_code"],
    )
