"""A call about a resource another platform owns, from this platform's side: where the owner is (a direct
peer), the signed call to its door, and its refusal passed on as the owner gave it; and, on the owner's side,
the principal a peer's department acts as. Used by the cross-level subscription and export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, NotFound
from govshare_common.federation_codes import next_hop
from govshare_common.peer_client import PeerClient, PeerUnavailable
from govshare_common.peer_guard import PEER_KIND
from govshare_common.peer_register import mirrored, peers


@dataclass(frozen=True)
class Owner:
    """The platform that owns a mirrored resource, as registered here, and the resource's code there."""

    peer: dict[str, Any]
    origin_code: str

    @property
    def division(self) -> str:
        return str(self.peer["division_code"])


def _no_identity() -> AppError:
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
        raise NotFound(
            f"本平台目录中没有来自其他平台的信息资源 {code}。",
            f"No resource of another platform is known here as {code}.",
            code="unknown_resource",
        )
    if client is None:
        raise _no_identity()
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
        raise _no_identity()
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
) -> dict[str, Any]:
    """The owner's signed answer; its refusal raised as it gave it (`details.origin_platform` names it)."""
    division = peer["division_code"]
    try:
        answer = await client.send(peer, method, path, idempotency_key=idempotency_key, body=body)
    except PeerUnavailable as exc:
        raise AppError(
            f"信息资源所属平台 {division} 暂时无法应答，请稍后重试。",
            f"The owner platform {division} cannot answer now; try again later.",
            code="peer_unavailable",
            status=503,
            details={"origin_platform": division, "error": str(exc)[:300]},
        ) from None
    if answer.status >= 300:
        refused = answer.body
        raise AppError(
            str(refused.get("message") or ""),
            str(refused.get("message") or ""),
            code=str(refused.get("code") or "refused_by_owner"),
            status=answer.status,
            details={
                **(refused.get("details") or {}),
                "origin_platform": division,
                "origin_trace_id": refused.get("trace_id"),
            },
        )
    return answer.body


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
