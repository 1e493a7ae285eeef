"""Cross-level online query (issue 16 item 5): consumer → own door → this service → the owner platform's door
(a signed peer call) → the owner's exchange-svc, which checks its own grant at every call and shapes and masks
the answer by it, so a revocation at the owner stops the next query at once.

Each platform writes its own `exchange.access` (here: what was asked, of which platform, with the owner's
grant; there: the owner's ordinary query access naming the peer), so a trace by ID number on either side finds
the cross-level access. A query travels the same route as a cross-level request, hop by hop
(`federation_codes.next_hop`): a platform between (a city between two of its districts) relays it signed to the
next hop, never back the way it came, passes the owner's answer or refusal on as the owner gave it, and writes
its own relay access naming both ends; it holds no grant and decides nothing.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError
from govshare_common.federation_codes import mirrored_code, next_hop
from govshare_common.identifiers import hash_identifier
from govshare_common.peer_client import PeerClient
from govshare_common.peer_guard import PEER_KIND
from govshare_common.peer_register import mirrored, peers

from exchange_svc import queries
from exchange_svc.events import ACCESS, Access
from exchange_svc.owner_calls import call_owner, no_identity, not_mirrored, record_cross_level_access
from exchange_svc.sealing import Sealer

PEER_RECORDS_PATH = "/api/v1/exchange/federation/peer-records"


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
        raise not_mirrored(code)
    if client is None:
        raise no_identity()
    origin = str(found["origin_division"])
    hop, served = await _ask_next_hop(
        uow,
        client,
        origin=origin,
        via=found["via_peer"],
        came_from=None,
        params=_query_params(
            resource=found["origin_code"],
            consumer=principal.department or "",
            asker=principal.subject,
            purpose=purpose,
            subjects=subjects,
            keys=keys,
            origin=origin,
            consumer_platform=None,
        ),
    )
    record_cross_level_access(
        uow,
        principal,
        kind="query",
        resource_code=code,
        purpose=purpose,
        rows=int(served.get("total") or 0),
        # What was asked (the owner answers for what it holds; both sides hash with their own key).
        subjects=subjects,
        grant_id=served.get("grant_id"),
        origin=origin,
        via=hop,
        hash_key=hash_key,
    )
    return {**served, "origin_platform": origin, "resource_code": code}


async def relay(
    uow: UnitOfWork,
    peer: dict[str, Any],
    client: PeerClient | None,
    *,
    origin: str,
    resource: str,
    consumer: str,
    asker: str,
    consumer_platform: str | None,
    purpose: str | None,
    subjects: list[str],
    keys: list[str],
    hash_key: bytes,
) -> dict[str, Any]:
    """A peer's query of a resource another platform owns, passed on towards its owner: the owner's answer as
    it gave it, and this platform's relay access (the department and its platform, the owner) recorded."""
    code = mirrored_code(origin, resource)
    found = await mirrored(uow.conn, code)
    if found is None or found["withdrawn"]:
        raise not_mirrored(code)
    if client is None:
        raise no_identity()
    applicant_platform = consumer_platform or str(peer["division_code"])
    hop, served = await _ask_next_hop(
        uow,
        client,
        origin=origin,
        via=found["via_peer"],
        came_from=str(peer["division_code"]),
        params=_query_params(
            resource=resource,
            consumer=consumer,
            asker=asker,
            purpose=purpose,
            subjects=subjects,
            keys=keys,
            origin=origin,
            consumer_platform=applicant_platform,
        ),
    )
    access_id = str(uuid.uuid4())
    uow.emit(
        ACCESS,
        access_id,
        Access(
            access_id=access_id,
            kind="query",
            department_code=consumer or None,
            principal=f"peer:{applicant_platform}:{asker}"[:200],
            grant_id=served.get("grant_id"),
            resource_code=code,
            purpose=purpose,
            rows=int(served.get("total") or 0),
            subjects_hashed=sorted({hash_identifier(s, key=hash_key) for s in subjects if s.strip()}),
            at=uow.clock.now(),
            basis="relay",
            origin_platform=origin,
            consumer_platform=applicant_platform,
            via_platform=hop if hop != origin else None,
        ),
    )
    return served


def _query_params(
    *,
    resource: str,
    consumer: str,
    asker: str,
    purpose: str | None,
    subjects: list[str],
    keys: list[str],
    origin: str,
    consumer_platform: str | None,
) -> list[tuple[str, str]]:
    """The query as the next hop is asked it: everything in the signed URI."""
    params: list[tuple[str, str]] = [("resource", resource), ("consumer", consumer), ("principal", asker)]
    if purpose:
        params.append(("purpose", purpose))
    params.append(("origin", origin))
    if consumer_platform:
        params.append(("consumer_platform", consumer_platform))
    return params + [("subject", s) for s in subjects] + [("key", k) for k in keys]


async def _ask_next_hop(
    uow: UnitOfWork,
    client: PeerClient,
    *,
    origin: str,
    via: str | None,
    came_from: str | None,
    params: list[tuple[str, str]],
) -> tuple[str, dict[str, Any]]:
    """(the peer asked, the owner's answer), the owner's refusal raised as it gave it."""
    registered = await peers(uow.conn)
    if came_from is not None:
        registered.pop(came_from, None)  # never back the way it came
    hop = next_hop(origin, via, registered)
    if hop is None:
        raise AppError(
            f"该信息资源属于平台 {origin}，本平台与其之间没有可转发查询的对端平台。",
            f"The resource belongs to platform {origin}; no registered peer leads there.",
            code="no_route_to_origin",
            status=409,
            details={"origin_platform": origin},
        )
    served = await call_owner(
        client,
        registered[hop],
        "GET",
        f"{PEER_RECORDS_PATH}?{urlencode(params)}",
        idempotency_key=uuid.uuid4().hex,
        origin=origin,
    )
    return hop, served


async def answer_peer(
    uow: UnitOfWork,
    peer: dict[str, Any],
    *,
    resource: str,
    consumer: str,
    asker: str,
    consumer_platform: str | None,
    purpose: str | None,
    subjects: list[str],
    keys: list[str],
    hash_key: bytes,
    sealer: Sealer,
) -> dict[str, Any]:
    """A peer's query for one of its departments, or relayed by it for a department further on
    (`consumer_platform`): the ordinary query, by the grant that department holds here through that peer
    (`via_peer`: the grant was issued to a request that came through it), its access recorded naming the
    department's platform and the peer it came through."""
    direct = consumer_platform in (None, peer["division_code"])
    principal = Principal(
        subject=f"peer:{consumer_platform if not direct else peer['division_code']}:{asker}"[:200],
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
