"""The change feed this platform serves its peers: each resource's latest state, tombstones included.

Written in the same transaction as the publication, update or withdrawal it records (flows), and for what is
mirrored from children (so a grandparent gets the district's catalog through the city). Read from a cursor,
`changes after N`, in the order they were committed; what a reader sees is decided by its relation to us:

- the parent reads the whole catalog (catalogs are compiled at each level and aggregated upward);
- a child reads only what is shared across levels (`cross_level`): our own such resources and those another
  child shared across levels (exchange between two districts goes through their city, 001 Art.8, so the city
  shows each district what the others share), never the child's own back. A resource that was shown to a child
  and is then withdrawn or no longer cross-level is a tombstone to it, naming only the resource's id; one never
  shared across levels is never named to a child at all.
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


async def page(
    conn: Any, *, after: int, limit: int, platform: dict[str, Any], reader: dict[str, Any]
) -> dict[str, Any]:
    if reader["relation"] == "parent":
        changes = await store.changes_after(conn, after, limit=min(limit, MAX_PAGE))
        head = await store.feed_head(conn)
    else:
        code = reader["division_code"]
        changes = await store.changes_below_after(conn, after, limit=min(limit, MAX_PAGE), reader=code)
        head = await store.feed_head_below(conn, reader=code)
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
