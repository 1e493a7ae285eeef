"""The platform office's register of peer platforms, and what operations see of each: cursor, lag, last
success and last error."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, ValidationFailed, field_error
from govshare_common.platform_identity import LEVELS, PlatformIdentity, division_code_problem, parse_public_key

from catalog_svc.events import PEER_CHANGED, PEER_REGISTERED, RESYNC_STARTED, Peer, ResyncStarted
from catalog_svc.federation import store


def not_configured() -> AppError:
    return AppError(
        "本平台尚未配置平台身份（GOVSHARE_PLATFORM_DIVISION_CODE），不能登记对端平台。",
        "This platform has no identity configured (GOVSHARE_PLATFORM_DIVISION_CODE); it cannot peer.",
        code="federation_not_configured",
        status=409,
    )


def _checked(body: dict[str, Any], me: PlatformIdentity) -> dict[str, Any]:
    problems = []
    code_problem = division_code_problem(body["division_code"])
    if code_problem is not None:
        problems.append(
            field_error(
                "division_code", code_problem, "Not a GB/T 2260 division code (6 digits).", code="invalid_division_code"
            )
        )
    elif body["division_code"] == me.division_code:
        problems.append(
            field_error(
                "division_code",
                "不能把本平台登记为自己的对端平台。",
                "A platform cannot peer with itself.",
                code="self_peer",
            )
        )
    if body["level"] not in LEVELS:
        problems.append(
            field_error(
                "level",
                f"层级须为 {'、'.join(LEVELS)} 之一。",
                f"level must be one of {', '.join(LEVELS)}.",
                code="invalid_level",
            )
        )
    try:
        url = urlsplit(body["base_url"])
        usable = url.scheme in ("https", "http") and bool(url.hostname) and not url.query and not url.fragment
        url.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        usable = False
    if not usable:
        problems.append(
            field_error(
                "base_url",
                "对端平台地址须为 https://主机[:端口][/路径]。",
                "base_url must be https://host[:port][/path].",
                code="invalid_url",
            )
        )
    if parse_public_key(body["public_key"]) is None:
        problems.append(
            field_error(
                "public_key",
                "公钥须为对端平台 /.well-known/govshare-platform 公布的 Ed25519 公钥（base64url，32字节）。",
                "public_key must be the peer's Ed25519 key as its /.well-known/govshare-platform publishes it.",
                code="invalid_public_key",
            )
        )
    if problems:
        raise ValidationFailed(
            "对端平台登记信息有误。", "The peer's registration has errors.", details={"fields": problems}
        )
    return {**body, "base_url": body["base_url"].rstrip("/")}


async def register(uow: UnitOfWork, principal: Principal, me: PlatformIdentity | None, body: dict[str, Any]) -> None:
    if me is None:
        raise not_configured()
    row = {**_checked(body, me), "actor": principal.subject, "now": uow.clock.now()}
    if not await store.insert_peer(uow.conn, row):
        raise AppError(
            f"对端平台 {body['division_code']} 已登记；修改请用 PUT。",
            f"Peer {body['division_code']} is registered already; change it with PUT.",
            code="peer_exists",
            status=409,
        )
    uow.emit(PEER_REGISTERED, row["division_code"], Peer(**{k: row[k] for k in Peer.model_fields}))


async def change(
    uow: UnitOfWork, principal: Principal, me: PlatformIdentity | None, division_code: str, body: dict[str, Any]
) -> None:
    if me is None:
        raise not_configured()
    await _existing(uow, division_code)
    row = {**_checked({**body, "division_code": division_code}, me), "actor": principal.subject, "now": uow.clock.now()}
    await store.update_peer(uow.conn, row)
    uow.emit(PEER_CHANGED, division_code, Peer(**{k: row[k] for k in Peer.model_fields}))


async def resync(uow: UnitOfWork, principal: Principal, division_code: str) -> None:
    """Read the peer's whole feed again from the start (tombstones included), replacing what is mirrored."""
    peer = await _existing(uow, division_code, lock=True)
    await store.reset_cursor(uow.conn, division_code, now=uow.clock.now())
    uow.emit(
        RESYNC_STARTED,
        division_code,
        ResyncStarted(division_code=division_code, previous_cursor=int(peer["cursor"]), actor=principal.subject),
    )


async def _existing(uow: UnitOfWork, division_code: str, *, lock: bool = False) -> dict[str, Any]:
    peer = await store.peer(uow.conn, division_code, lock=lock)
    if peer is None:
        raise AppError(
            f"未登记对端平台 {division_code}。", f"No peer {division_code} is registered.", code="not_found", status=404
        )
    return peer


def shown(peer: dict[str, Any], *, mirrored: int, now: datetime) -> dict[str, Any]:
    """A peer as operations see it: how far behind its feed this platform is (a child's whole catalog, or what the
    parent shares across levels)."""
    view: dict[str, Any] = {
        k: peer[k]
        for k in (
            "division_code",
            "name",
            "level",
            "relation",
            "base_url",
            "public_key",
            "registered_by",
            "registered_at",
            "updated_at",
        )
    }
    head = peer["peer_head"]
    view["feed"] = {
        "cursor": peer["cursor"],
        "peer_head": head,
        "lag_changes": max(0, head - peer["cursor"]) if head is not None else None,
        "seconds_since_success": (now - peer["last_success_at"]).total_seconds() if peer["last_success_at"] else None,
        "received_changes": peer["received_changes"],
        "mirrored_resources": mirrored,
        "last_attempt_at": peer["last_attempt_at"],
        "last_success_at": peer["last_success_at"],
        "last_error": peer["last_error"],
        "last_error_at": peer["last_error_at"],
        # The last attempt failed (the error is newer than the last success).
        "failing": bool(
            peer["last_error_at"] and (not peer["last_success_at"] or peer["last_error_at"] > peer["last_success_at"])
        ),
    }
    return view
