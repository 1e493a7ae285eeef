"""The change feed this platform serves its parent: each resource's latest state, tombstones included.

Written in the same transaction as the publication, update or withdrawal it records (flows), and for what is
mirrored from children (so a grandparent gets the district's catalog through the city). Read by the parent
from a cursor: `changes after N`, in the order they were committed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from catalog_svc.federation import store

MAX_PAGE = 1000


async def record_published(conn: Any, snapshot: dict[str, Any], *, now: datetime) -> None:
    await store.record_changes(
        conn, [{"resource_id": snapshot["id"], "kind": "upsert", "snapshot": snapshot, "origin": None, "now": now}]
    )


async def record_withdrawn(conn: Any, snapshot: dict[str, Any], *, now: datetime) -> None:
    await store.record_changes(
        conn, [{"resource_id": snapshot["id"], "kind": "tombstone", "snapshot": snapshot, "origin": None, "now": now}]
    )


async def page(conn: Any, *, after: int, limit: int, platform: dict[str, Any]) -> dict[str, Any]:
    changes = await store.changes_after(conn, after, limit=min(limit, MAX_PAGE))
    head = await store.feed_head(conn)
    return {
        "platform": platform,
        "after": after,
        "head": head,
        "next": changes[-1]["seq"] if changes else after,
        "changes": [
            {
                "seq": c["seq"],
                "kind": c["kind"],
                "resource_id": c["resource_id"],
                "origin": c["origin"],
                "changed_at": c["changed_at"].isoformat(),
                "snapshot": c["snapshot"],
                "document": c["document"],
            }
            for c in changes
        ],
    }
