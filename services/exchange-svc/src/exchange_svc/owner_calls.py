"""A call about a resource another platform owns, from this platform's side: where the owner is (a direct
peer, for a subscription or export), the signed call to its door or the next hop's, and its refusal passed on as
it was given; and, on the owner's side, the principal a peer's department acts as. Used by the cross-level
query, its relay, the cross-level subscription and export."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, NotFound
from govshare_common.federation_codes import next_hop
from govshare_common.identifiers import hash_identifier
from govshare_common.peer_client import PeerClient, PeerUnavailable
from govshare_common.peer_guard import PEER_KIND
from govshare_common.peer_register import mirrored, peers

from exchange_svc.events import ACCESS, Access


@dataclass(frozen=True)
class Owner:
    """The platform that owns a mirrored resource, as registered here, and the resource's code there."""

    peer: dict[str, Any]
    origin_code: str

    @property
    def division(self) -> str:
        return str(self.peer["division_code"])


def not_mirrored(code: str) -> NotFound:
    return NotFound(
        f"本平台目录中没有来自其他平台的信息资源 {code}。",
        f"No resource of another platform is known here as {code}.",
        code="unknown_resource",
    )


def no_identity() -> AppError:
    return AppError(
        "本平台尚未配置平台身份，不能跨平台交换数据。",
        "This platform has no identity configured; it cannot exchange data across levels.",
        code="federation_not_configured",
        status=409,
    )


async def owner_of(uow: UnitOfWork, client: PeerClient | None, code: str) -> Owner:
    """The owner of the resource this platform's catalog shows as `code`; a direct peer only (no relay)."""
    found = await mirrored(uow.conn, code)
    if found is None or found["withdrawn"]:
        raise not_mirrored(code)
    if client is None:
        raise no_identity()
    registered = await peers(uow.conn)
    hop = next_hop(found["origin_division"], found["via_peer"], registered)
    if hop is None or hop != found["origin_division"]:
        raise AppError(
            f"该信息资源属于平台 {found['origin_division']}，与本平台之间没有直接的对端关系。",
            f"The resource belongs to platform {found['origin_division']}, not a direct peer of this platform.",
            code="no_route_to_origin",
            status=409,
        )
    return Owner(peer=registered[hop], origin_code=str(found["origin_code"]))


async def registered_owner(uow: UnitOfWork, client: PeerClient | None, division: str) -> dict[str, Any]:
    """The owner platform of a subscription or export made here, while it is still a registered peer."""
    if client is None:
        raise no_identity()
    peer = (await peers(uow.conn)).get(division)
    if peer is None:
        raise AppError(
            f"平台 {division} 已不是本平台的对端平台。",
            f"Platform {division} is no longer a registered peer.",
            code="no_route_to_origin",
            status=409,
        )
    return peer


async def call_owner(
    client: PeerClient,
    peer: dict[str, Any],
    method: str,
    path: str,
    *,
    idempotency_key: str,
    body: dict[str, Any] | None = None,
    origin: str | None = None,
) -> dict[str, Any]:
    """The owner's signed answer, asked of `peer` (the owner itself, or the next hop towards `origin`); a
    refusal raised as it was given (`details.origin_platform` names the owner, or the hop that refused)."""
    hop = str(peer["division_code"])
    owner = origin or hop
    try:
        answer = await client.send(peer, method, path, idempotency_key=idempotency_key, body=body)
    except PeerUnavailable as exc:
        through = f"（经 {hop}）" if owner != hop else ""
        raise AppError(
            f"信息资源所属平台 {owner} 暂时无法应答{through}，请稍后重试。",
            f"The owner platform {owner} cannot answer now"
            + (f" (asked through {hop})" if owner != hop else "")
            + "; try again later.",
            code="peer_unavailable",
            status=503,
            details={"origin_platform": owner, "error": str(exc)[:300]} | ({"next_hop": hop} if owner != hop else {}),
        ) from None
    if answer.status >= 300:
        refused = answer.body
        details = refused.get("details")
        given: dict[str, Any] = details if isinstance(details, dict) else {}
        # A relay's refusal names the owner already; one by the hop itself names that hop.
        raise AppError(
            str(refused.get("message") or ""),
            str(refused.get("message") or ""),
            code=str(refused.get("code") or "refused_by_owner"),
            status=answer.status,
            details={
                **given,
                "origin_platform": given.get("origin_platform") or hop,
                "origin_trace_id": given.get("origin_trace_id") or refused.get("trace_id"),
            },
        )
    return dict(answer.body)


def peer_principal(peer: dict[str, Any], consumer: str, asker: str) -> Principal:
    """At the owner: who a peer's call acts as — its department (by USCC), named with the peer and the asker."""
    return Principal(
        subject=f"peer:{peer['division_code']}:{asker}"[:200],
        kind=PEER_KIND,
        department=consumer or None,
        roles=frozenset({"dept_system"}),
    )


def subjects_in_clear(subjects: list[Any]) -> list[str]:
    """The subjects an owner's answer shows in clear. A masked one is a person this platform never learns, so
    only the owner's audit trail can name that person."""
    return [s for s in subjects if isinstance(s, str) and s.strip() and "*" not in s]


def record_cross_level_access(
    uow: UnitOfWork,
    principal: Principal,
    *,
    kind: Literal["query", "export", "feed"],
    resource_code: str,
    purpose: str | None,
    rows: int,
    subjects: list[str],
    grant_id: Any,
    origin: str,
    via: str | None,
    hash_key: bytes,
) -> None:
    """This platform's own `exchange.access` of a department's use of another platform's resource (basis
    `cross_level`, naming the owner and the owner's grant): the one a trace by ID number here finds."""
    access_id = str(uuid.uuid4())
    uow.emit(
        ACCESS,
        access_id,
        Access(
            access_id=access_id,
            kind=kind,
            department_code=principal.department,
            principal=principal.subject,
            grant_id=grant_id,
            resource_code=resource_code,
            purpose=purpose,
            rows=rows,
            subjects_hashed=sorted({hash_identifier(s, key=hash_key) for s in subjects if s.strip()}),
            at=uow.clock.now(),
            basis="cross_level",
            origin_platform=origin,
            via_platform=via if via != origin else None,
        ),
    )
