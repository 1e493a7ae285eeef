"""Tables and queries of federation: peers and their pull state, nonces seen, the change feed, mirrored resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from govshare_common.outbox import lock_key

# --- peers --------------------------------------------------------------------------------------------------

_PEER_COLUMNS = (
    "division_code, name, level, relation, base_url, public_key, registered_by, registered_at, updated_at, "
    "cursor, peer_head, received_changes, last_attempt_at, last_success_at, last_error, last_error_at"
)


async def peer(conn: Any, division_code: str, *, lock: bool = False) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text(
                f"SELECT {_PEER_COLUMNS} FROM federation_peer WHERE division_code = :c{' FOR UPDATE' if lock else ''}"
            ),
            {"c": division_code},
        )
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


async def peers(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.execute(text(f"SELECT {_PEER_COLUMNS} FROM federation_peer ORDER BY relation, division_code"))
    return [dict(r._mapping) for r in rows]


async def peer_codes(conn: Any) -> list[str]:
    rows = await conn.execute(text("SELECT division_code FROM federation_peer ORDER BY relation, division_code"))
    return [r.division_code for r in rows]


async def insert_peer(conn: Any, row: dict[str, Any]) -> bool:
    """False when a peer with this division code is registered already."""
    result = await conn.execute(
        text(
            "INSERT INTO federation_peer (division_code, name, level, relation, base_url, public_key, "
            "registered_by, registered_at, updated_at) VALUES (:division_code, :name, :level, :relation, "
            ":base_url, :public_key, :actor, :now, :now) ON CONFLICT (division_code) DO NOTHING"
        ),
        row,
    )
    return bool(result.rowcount)


async def update_peer(conn: Any, row: dict[str, Any]) -> None:
    await conn.execute(
        text(
            # A peer that changes relation serves us another feed: its cursor starts again.
            "UPDATE federation_peer SET name = :name, level = :level, relation = :relation, base_url = :base_url, "
            "public_key = :public_key, updated_at = :now, "
            "cursor = CASE WHEN relation = :relation THEN cursor ELSE 0 END WHERE division_code = :division_code"
        ),
        row,
    )


async def reset_cursor(conn: Any, division_code: str, *, now: datetime) -> None:
    await conn.execute(
        text("UPDATE federation_peer SET cursor = 0, updated_at = :now WHERE division_code = :c"),
        {"c": division_code, "now": now},
    )


async def try_lock_pull(conn: Any, division_code: str) -> bool:
    """One puller per child across replicas, for this transaction."""
    return bool(
        (
            await conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"),
                {"k": lock_key(f"catalog-federation-pull:{division_code}")},
            )
        ).scalar_one()
    )


async def pulled(conn: Any, division_code: str, *, cursor: int, head: int, received: int, now: datetime) -> None:
    await conn.execute(
        text(
            "UPDATE federation_peer SET cursor = :cursor, peer_head = :head, received_changes = received_changes + "
            ":received, last_attempt_at = :now, last_success_at = :now WHERE division_code = :c"
        ),
        {"c": division_code, "cursor": cursor, "head": head, "received": received, "now": now},
    )


async def pull_failed(conn: Any, division_code: str, *, error: str, now: datetime) -> None:
    await conn.execute(
        text(
            "UPDATE federation_peer SET last_attempt_at = :now, last_error = :error, last_error_at = :now "
            "WHERE division_code = :c"
        ),
        {"c": division_code, "error": error[:2000], "now": now},
    )


# --- nonces -------------------------------------------------------------------------------------------------


async def remember_nonce(conn: Any, keyid: str, nonce: str, *, now: datetime) -> bool:
    """False when this peer used this nonce before (within the replay window, which is how long they are kept)."""
    result = await conn.execute(
        text(
            "INSERT INTO federation_nonce (keyid, nonce, seen_at) VALUES (:k, :n, :now) "
            "ON CONFLICT (keyid, nonce) DO NOTHING"
        ),
        {"k": keyid, "n": nonce, "now": now},
    )
    return bool(result.rowcount)


async def forget_nonces(conn: Any, *, before: datetime) -> int:
    result = await conn.execute(text("DELETE FROM federation_nonce WHERE seen_at < :before"), {"before": before})
    return int(result.rowcount or 0)


# --- the change feed ----------------------------------------------------------------------------------------

_FEED_LOCK = lock_key("catalog-federation-feed")
_RECORD_CHANGE = text(
    "INSERT INTO federation_feed (resource_id, seq, kind, snapshot, origin, changed_at, shown_below) "
    "VALUES (CAST(:resource_id AS uuid), nextval('federation_feed_seq'), :kind, :snapshot, :origin, :now, :below) "
    "ON CONFLICT (resource_id) DO UPDATE SET seq = nextval('federation_feed_seq'), kind = excluded.kind, "
    "snapshot = excluded.snapshot, origin = excluded.origin, changed_at = excluded.changed_at, "
    "shown_below = federation_feed.shown_below OR excluded.shown_below"
).bindparams(bindparam("snapshot", type_=JSONB), bindparam("origin", type_=JSONB))


async def record_changes(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Each resource's latest state, numbered after every change committed before it: the lock (held to the
    commit) makes numbering order commit order, so a reader past a number never misses a later commit below it."""
    if not rows:
        return
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FEED_LOCK})
    await conn.execute(
        _RECORD_CHANGE,
        [{**r, "below": r["kind"] == "upsert" and (r["snapshot"] or {}).get("cross_level") is True} for r in rows],
    )


async def changes_after(conn: Any, after: int, *, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        # With each live resource, its search document as this platform built it (the parent need not segment
        # the text again: jieba is ~2 ms a resource).
        text(
            "SELECT f.seq, f.kind, f.resource_id::text AS resource_id, f.snapshot, f.origin, f.changed_at, "
            "p.document::text AS document FROM federation_feed f LEFT JOIN published_resource p "
            "ON p.resource_id = f.resource_id AND f.kind = 'upsert' WHERE f.seq > :after ORDER BY f.seq LIMIT :limit"
        ),
        {"after": after, "limit": limit},
    )
    return [dict(r._mapping) for r in rows]


async def feed_head(conn: Any) -> int:
    return int((await conn.execute(text("SELECT coalesce(max(seq), 0) FROM federation_feed"))).scalar_one())


# What a child reads: the rows ever shown below, less what came from that child itself. A row is an upsert only
# while it is live and still cross-level; otherwise a tombstone naming nothing but the resource.
_BELOW = (
    "FROM federation_feed f LEFT JOIN federation_mirror m ON m.resource_id = f.resource_id "
    "WHERE f.shown_below AND m.peer IS DISTINCT FROM :reader"
)
_LIVE_BELOW = "f.kind = 'upsert' AND coalesce((f.snapshot->>'cross_level')::boolean, false)"


async def changes_below_after(conn: Any, after: int, *, limit: int, reader: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            f"SELECT f.seq, CASE WHEN {_LIVE_BELOW} THEN 'upsert' ELSE 'tombstone' END AS kind, "
            "f.resource_id::text AS resource_id, "
            f"CASE WHEN {_LIVE_BELOW} THEN f.snapshot ELSE jsonb_build_object('id', f.resource_id::text) END "
            f"AS snapshot, CASE WHEN {_LIVE_BELOW} THEN f.origin END AS origin, f.changed_at, "
            f"CASE WHEN {_LIVE_BELOW} THEN p.document::text END AS document "
            f"{_BELOW.replace('WHERE', 'LEFT JOIN published_resource p ON p.resource_id = f.resource_id WHERE')} "
            "AND f.seq > :after ORDER BY f.seq LIMIT :limit"
        ),
        {"after": after, "limit": limit, "reader": reader},
    )
    return [dict(r._mapping) for r in rows]


async def feed_head_below(conn: Any, *, reader: str) -> int:
    return int((await conn.execute(text(f"SELECT coalesce(max(f.seq), 0) {_BELOW}"), {"reader": reader})).scalar_one())


# --- mirrored resources -------------------------------------------------------------------------------------


async def local_or_elsewhere(conn: Any, resource_ids: list[str], peer: str) -> set[str]:
    """Of these ids, those this child may not write: our own resources, or mirrored through another child."""
    rows = await conn.execute(
        text(
            "SELECT r.id::text AS id FROM resource r LEFT JOIN federation_mirror m ON m.resource_id = r.id "
            "WHERE r.id = ANY(CAST(:ids AS uuid[])) AND (r.origin_division IS NULL OR m.peer IS DISTINCT FROM :peer)"
        ),
        {"ids": resource_ids, "peer": peer},
    )
    return {r.id for r in rows}


async def mirrored_ids(conn: Any, resource_ids: list[str], peer: str) -> set[str]:
    rows = await conn.execute(
        text(
            "SELECT m.resource_id::text AS id FROM federation_mirror m JOIN resource r ON r.id = m.resource_id "
            "WHERE m.resource_id = ANY(CAST(:ids AS uuid[])) AND m.peer = :peer AND r.status = 'published'"
        ),
        {"ids": resource_ids, "peer": peer},
    )
    return {r.id for r in rows}


_UPSERT_MIRRORED_RESOURCE = text(
    "INSERT INTO resource (id, provider_code, provider_name, name, status, code, published_version, latest_version, "
    "created_by, created_at, updated_at, origin_division) VALUES (CAST(:resource_id AS uuid), :provider_code, "
    ":provider_name, :name, 'published', :code, :version, :version, :actor, :now, :now, :origin_division) "
    "ON CONFLICT (id) DO UPDATE SET provider_code = excluded.provider_code, provider_name = excluded.provider_name, "
    "name = excluded.name, status = 'published', code = excluded.code, published_version = excluded.published_version, "
    "latest_version = excluded.latest_version, updated_at = excluded.updated_at, withdrawn_at = NULL, "
    "withdrawn_by = NULL, withdrawn_reason = NULL"
)
_UPSERT_MIRROR = text(
    "INSERT INTO federation_mirror (resource_id, peer, origin, origin_code, seq) VALUES (CAST(:resource_id AS uuid), "
    ":peer, :origin, :origin_code, :seq) ON CONFLICT (resource_id) DO UPDATE SET origin = excluded.origin, "
    "origin_code = excluded.origin_code, seq = excluded.seq"
).bindparams(bindparam("origin", type_=JSONB))


async def upsert_mirrored(conn: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_UPSERT_MIRRORED_RESOURCE, rows)
        await conn.execute(_UPSERT_MIRROR, rows)


async def remove_mirrored(conn: Any, resource_ids: list[str], *, actor: str, now: datetime, reason: str) -> None:
    if not resource_ids:
        return
    ids = {"ids": resource_ids}
    await conn.execute(
        text(
            "UPDATE resource SET status = 'withdrawn', withdrawn_by = :actor, withdrawn_at = :now, "
            "withdrawn_reason = :reason, updated_at = :now WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        {**ids, "actor": actor, "now": now, "reason": reason},
    )
    for table in ("published_resource", "published_snapshot"):
        await conn.execute(text(f"DELETE FROM {table} WHERE resource_id = ANY(CAST(:ids AS uuid[]))"), ids)


async def mirrored_count(conn: Any) -> dict[str, int]:
    rows = await conn.execute(
        text(
            "SELECT m.peer, count(*) AS n FROM federation_mirror m JOIN resource r ON r.id = m.resource_id "
            "WHERE r.status = 'published' GROUP BY m.peer"
        )
    )
    return {r.peer: int(r.n) for r in rows}
