"""The service's own access check for every data call, and the exchange.access event every served read emits.

Loads the resource and the caller's grants from this service's projections and applies domain.access; a refusal
is a 403 in the platform's error shape (the same codes the gateway uses), so a caller who bypasses the gateway
meets the same rule.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import Forbidden, NotFound
from govshare_common.identifiers import hash_identifier

from exchange_svc.domain.access import REFUSALS, Decision, GrantView, decide
from exchange_svc.domain.resources import HostedResource, Item
from exchange_svc.events import ACCESS, Access

log = logging.getLogger("govshare.exchange.guard")


def resource_from_row(row: Any) -> HostedResource:
    items = row.data_items if not isinstance(row.data_items, str) else json.loads(row.data_items)
    return HostedResource(
        code=row.code,
        provider_code=row.provider_code,
        name=row.name,
        resource_class=row.resource_class,
        share_type=row.share_type,
        format_category=row.format_category,
        share_method_type=row.share_method_type,
        update_cycle=row.update_cycle,
        items=tuple(Item.from_catalog(i) for i in items),
        declared_key=tuple(row.declared_key) if row.declared_key else None,
        status=row.status,
    )


async def load_resource(uow: UnitOfWork, code: str) -> HostedResource | None:
    row = (await uow.execute(text("SELECT * FROM resource WHERE code = :c"), {"c": code})).one_or_none()
    return resource_from_row(row) if row is not None else None


async def require_resource(uow: UnitOfWork, code: str) -> HostedResource:
    resource = await load_resource(uow, code)
    if resource is None:
        raise NotFound(
            f"平台没有已发布的信息资源 {code}。",
            f"No published resource {code} is known here.",
            code="unknown_resource",
        )
    return resource


async def live_grants(
    uow: UnitOfWork, department: str | None, code: str, *, via_peer: str | None = None
) -> list[GrantView]:
    """The department's live grants for the resource: on a peer's call only those its request came through that
    peer for; on this platform's own calls only this platform's own."""
    if department is None:
        return []
    rows = await uow.execute(
        text(
            "SELECT * FROM grant_projection WHERE consumer_code = :d AND resource_code = :c AND status = 'active' "
            "AND consumer_platform IS NOT DISTINCT FROM :pf ORDER BY updated_at"
        ),
        {"d": department, "c": code, "pf": via_peer},
    )
    return [
        GrantView(
            grant_id=r.grant_id,
            consumer_code=r.consumer_code,
            resource_code=r.resource_code,
            items=frozenset(r.items),
            unmasked_items=frozenset(r.unmasked_items),
            purposes=frozenset(r.purposes),
            valid_from=r.valid_from,
            valid_until=r.valid_until,
            status=r.status,
        )
        for r in rows
    ]


def refuse(code: str, reason: str, principal: Principal) -> Forbidden:
    zh, en = REFUSALS.get(reason, ("无权访问该信息资源。", "No access to this resource."))
    log.warning("data access denied: resource %s reason %s principal %s", code, reason, principal.subject)
    return Forbidden(
        zh, f"No access to resource {code}: {en}", code="no_grant", details={"resource": code, "reason": reason}
    )


async def authorize(
    uow: UnitOfWork, principal: Principal, code: str, purpose: str | None, *, via_peer: str | None = None
) -> tuple[HostedResource, Decision]:
    """The resource and what the caller may read of it, or a 403/404 refusal. `via_peer`: a peer platform asks
    for one of its departments, which is never this resource's provider (that is a department here)."""
    resource = await require_resource(uow, code)
    decision = decide(
        department=principal.department,
        resource=resource,
        grants=await live_grants(uow, principal.department, code, via_peer=via_peer),
        purpose=purpose,
        now=uow.clock.now(),
    )
    if via_peer is not None and decision.reason == "provider":
        raise refuse(code, "peer_not_provider", principal)
    if not decision.allowed:
        raise refuse(code, decision.reason, principal)
    return resource, decision


def emit_access(
    uow: UnitOfWork,
    *,
    kind: str,
    principal: Principal,
    resource: HostedResource,
    decision: Decision,
    purpose: str | None,
    rows: int,
    subjects: list[str | None],
    hash_key: bytes,
) -> str:
    access_id = str(uuid.uuid4())
    hashed = sorted({hash_identifier(s, key=hash_key) for s in subjects if s})
    uow.emit(
        ACCESS,
        access_id,
        Access(
            access_id=access_id,
            kind=kind,  # type: ignore[arg-type]
            department_code=principal.department,
            principal=principal.subject,
            grant_id=decision.grant_id,
            resource_code=resource.code,
            purpose=purpose,
            rows=rows,
            subjects_hashed=hashed,
            at=uow.clock.now(),
            basis=decision.reason,
        ),
    )
    return access_id
