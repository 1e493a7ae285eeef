"""Tables and queries of cross-level requests: the forwarding and reporting state of requests that cross a
platform (the peers, mirrored resources and nonces are `govshare_common.peer_register`'s)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from govshare_common.peer_register import forget_nonces, mirrored, peer, peers, remember_nonce

from request_svc.store import REQUEST_COLUMNS

__all__ = ["forget_nonces", "mirrored", "peer", "peers", "remember_nonce"]

# --- requests that cross a platform -------------------------------------------------------------------------

_JSON = {"forward_body": JSONB, "origin_status": JSONB}


async def set_request(conn: Any, request_id: str, **fields: Any) -> None:
    """Set the cross-level columns of a request (its updated_at is the workflow's and is left alone)."""
    assignments = ", ".join(f"{k} = :{k}" for k in fields)
    statement = text(f"UPDATE share_request SET {assignments} WHERE id = CAST(:id AS uuid)")
    binds = [bindparam(k, type_=_JSON[k]) for k in fields if k in _JSON]
    if binds:
        statement = statement.bindparams(*binds)
    await conn.execute(statement, {**fields, "id": request_id})


async def from_peer(conn: Any, platform: str, idempotency_key: str) -> str | None:
    """The request a peer's forwarding call with this idempotency key made here before, if any."""
    r = await conn.execute(
        text("SELECT id::text FROM share_request WHERE consumer_platform = :p AND peer_idempotency_key = :k"),
        {"p": platform, "k": idempotency_key},
    )
    return r.scalar_one_or_none()  # type: ignore[no-any-return]


async def to_forward(conn: Any, *, limit: int = 100) -> list[dict[str, Any]]:
    """Requests waiting to reach the next platform on their way to the owner, oldest first."""
    rows = await conn.execute(
        text(
            "SELECT id::text AS id, next_hop, forward_body, forward_attempts FROM share_request "
            "WHERE origin_platform IS NOT NULL AND origin_request_id IS NULL AND state = 'forwarding' "
            "ORDER BY submitted_at LIMIT :limit"
        ),
        {"limit": limit},
    )
    return [dict(r._mapping) for r in rows]


_VERSION = "greatest(r.updated_at, g.ended_at)"


async def to_report(conn: Any, *, request_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Requests from a peer whose state (or grant) changed since the peer was last told; or one such request."""
    where = (
        "r.id = CAST(:id AS uuid)"
        if request_id is not None
        else f"r.consumer_platform IS NOT NULL AND (r.peer_synced_at IS NULL OR {_VERSION} > r.peer_synced_at)"
    )
    rows = await conn.execute(
        text(
            f"SELECT {', '.join('r.' + c.strip() for c in REQUEST_COLUMNS.split(', '))}, "
            f"r.peer_request_id, {_VERSION} AS version, g.status AS grant_status, g.items AS grant_items, "
            "g.unmasked_items AS grant_unmasked_items, g.valid_until AS grant_valid_until, "
            "g.end_reason AS grant_end_reason, g.ended_at AS grant_ended_at "
            "FROM share_request r LEFT JOIN share_grant g ON g.id = r.grant_id "
            f"WHERE {where} ORDER BY {_VERSION} LIMIT :limit"
        ),
        {"limit": limit, "id": request_id},
    )
    return [dict(r._mapping) for r in rows]


async def reported(conn: Any, request_id: str, *, version: datetime, error: str | None, done: bool) -> None:
    if done:
        await conn.execute(
            text(
                "UPDATE share_request SET peer_synced_at = greatest(coalesce(peer_synced_at, :v), :v), "
                "peer_sync_error = :e WHERE id = CAST(:id AS uuid)"
            ),
            {"v": version, "e": error, "id": request_id},
        )
    else:
        await conn.execute(
            text("UPDATE share_request SET peer_sync_error = :e WHERE id = CAST(:id AS uuid)"),
            {"e": error, "id": request_id},
        )


async def forwarded_here(conn: Any, request_id: str) -> dict[str, Any] | None:
    """A request of ours forwarded on, as the platform it went to reports on it."""
    r = (
        await conn.execute(
            text(
                f"SELECT {REQUEST_COLUMNS}, next_hop, origin_version FROM share_request "
                "WHERE id = CAST(:id AS uuid) AND origin_platform IS NOT NULL FOR UPDATE"
            ),
            {"id": request_id},
        )
    ).one_or_none()
    return dict(r._mapping) if r is not None else None


async def forward_failed(conn: Any, request_id: str, *, error: str) -> None:
    await conn.execute(
        text(
            "UPDATE share_request SET forward_error = :e, forward_attempts = forward_attempts + 1 "
            "WHERE id = CAST(:id AS uuid)"
        ),
        {"e": error, "id": request_id},
    )
