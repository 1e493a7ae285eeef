"""Cross-level online query (issue 16 item 5): consumer → own door → this service → the owner platform's door
(a signed peer call) → the owner's exchange-svc, which checks its own grant at every call and shapes and masks
the answer by it, so a revocation at the owner stops the next query at once.

Each platform writes its own `exchange.access` (here: what was asked, of which platform, with the owner's
grant; there: the owner's ordinary query access naming the peer), so a trace by ID number on either side finds
the cross-level access. A query travels the same route as a cross-level request (one hop tested; a platform
between does not relay queries yet).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, NotFound
from govshare_common.federation_codes import next_hop
from govshare_common.identifiers import hash_identifier
from govshare_common.peer_client import PeerClient, PeerUnavailable
from govshare_common.peer_guard import PEER_KIND
from govshare_common.peer_register import mirrored, peers

from exchange_svc import queries
from exchange_svc.events import ACCESS, Access
from exchange_svc.sealing import Sealer

PEER_RECORDS_PATH = "/api/v1/exchange/federation/peer-records"


def _not_mirrored(code: str) -> NotFound:
    return NotFound(
        f"本平台目录中没有来自其他平台的信息资源 {code}。",
        f"No resource of another platform is known here as {code}.",
        code="unknown_resource",
    )


async def ask_owner(
    uow: UnitOfWork,
    principal: Principal,
    client: PeerClient | None,
    *,
    code: str,
    purpose: str | None,
    subjects: list[str],
    keys: list[str],
    hash_key: bytes,
) -> dict[str, Any]:
    """The owner platform's answer to this department's query of its resource, as the owner shaped it."""
    found = await mirrored(uow.conn, code)
    if found is None or found["withdrawn"]:
        raise _not_mirrored(code)
    if client is None:
        raise AppError(
            "本平台尚未配置平台身份，不能跨平台查询。",
            "This platform has no identity configured; it cannot query across levels.",
            code="federation_not_configured",
            status=409,
        )
    registered = await peers(uow.conn)
    hop = next_hop(found["origin_division"], found["via_peer"], registered)
    if hop is None or hop != found["origin_division"]:
        raise AppError(
            f"该信息资源属于平台 {found['origin_division']}，与本平台之间没有直接的对端关系。",
            f"The resource belongs to platform {found['origin_division']}, not a direct peer of this platform.",
            code="no_route_to_origin",
            status=409,
        )
    params: list[tuple[str, str]] = [
        ("resource", found["origin_code"]),
        ("consumer", principal.department or ""),
        ("principal", principal.subject),
    ]
    if purpose:
        params.append(("purpose", purpose))
    params += [("subject", s) for s in subjects] + [("key", k) for k in keys]
    try:
        answer = await client.send(
            registered[hop], "GET", f"{PEER_RECORDS_PATH}?{urlencode(params)}", idempotency_key=uuid.uuid4().hex
        )
    except PeerUnavailable as exc:
        raise AppError(
            f"信息资源所属平台 {hop} 暂时无法应答，请稍后重试。",
            f"The owner platform {hop} cannot answer now; try again later.",
            code="peer_unavailable",
            status=503,
            details={"origin_platform": hop, "error": str(exc)[:300]},
        ) from None
    if answer.status != 200:
        body = answer.body
        # The owner's refusal, passed on as it gave it (no grant, revoked, unknown purpose …).
        raise AppError(
            str(body.get("message") or ""),
            str(body.get("message") or ""),
            code=str(body.get("code") or "refused_by_owner"),
            status=answer.status,
            details={**(body.get("details") or {}), "origin_platform": hop, "origin_trace_id": body.get("trace_id")},
        )
    served = answer.body
    access_id = str(uuid.uuid4())
    uow.emit(
        ACCESS,
        access_id,
        Access(
            access_id=access_id,
            kind="query",
            department_code=principal.department,
            principal=principal.subject,
            grant_id=served.get("grant_id"),
            resource_code=code,
            purpose=purpose,
            rows=int(served.get("total") or 0),
            # What was asked (the owner answers for what it holds; both sides hash with their own key).
            subjects_hashed=sorted({hash_identifier(s, key=hash_key) for s in subjects if s.strip()}),
            at=uow.clock.now(),
            basis="cross_level",
            origin_platform=hop,
        ),
    )
    return {**served, "origin_platform": hop, "resource_code": code}


async def answer_peer(
    uow: UnitOfWork,
    peer: dict[str, Any],
    *,
    resource: str,
    consumer: str,
    asker: str,
    purpose: str | None,
    subjects: list[str],
    keys: list[str],
    hash_key: bytes,
    sealer: Sealer,
) -> dict[str, Any]:
    """A peer's query for one of its departments: the ordinary query, by the grant that department holds here
    through that peer (`via_peer`), its access recorded naming the peer."""
    principal = Principal(
        subject=f"peer:{peer['division_code']}:{asker}"[:200],
        kind=PEER_KIND,
        department=consumer or None,
        roles=frozenset({"dept_system"}),
    )
    return await queries.query(
        uow,
        principal,
        code=resource,
        purpose=purpose,
        subjects=subjects,
        keys=keys,
        hash_key=hash_key,
        sealer=sealer,
        via_peer=peer["division_code"],
    )
