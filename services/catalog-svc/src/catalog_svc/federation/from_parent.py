"""The parent's resources shared across levels, applied here: they enter this catalog and its search with their
origin platform and provider, read-only (the workflow refuses them, as it refuses a child's), and leave again
when the parent tombstones them (withdrawn, or no longer cross-level there).

What the parent sends a child is already only what is shared across levels (the parent's `feed` decides by our
relation); a tombstone names only the resource. Nothing taken from the parent enters our own feed: the parent
has it, and passing it further down to our own children is not done (a district sees its city's and its
sibling districts' cross-level resources; a province's would need the city to pass them on).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from govshare_common.db import UnitOfWork

from catalog_svc.events import MirroredChange, ResourceSnapshot
from catalog_svc.federation import store
from catalog_svc.federation.mirror import mirrored_rows, origin_of, page_done, put_live, take_out


async def apply(uow: UnitOfWork, peer: dict[str, Any], page: dict[str, Any]) -> int:
    """Apply one page of the parent's feed; returns the cursor to keep (the page's last number)."""
    changes = [c for c in page["changes"] if isinstance(c, dict)]
    ids = [str(c.get("resource_id")) for c in changes]
    # never over our own resources, nor over what a child of ours gave us
    refused = await store.local_or_elsewhere(uow.conn, ids, peer["division_code"]) if ids else set()
    now = uow.clock.now()
    actor = f"peer:{peer['division_code']}"
    upserts: list[dict[str, Any]] = []
    published: list[dict[str, Any]] = []
    tombstones: list[str] = []
    applied: list[MirroredChange] = []
    latest: dict[str, dict[str, Any]] = {c["resource_id"]: c for c in changes if c["resource_id"] not in refused}
    for rid, change in latest.items():
        origin = origin_of(change, peer)
        if change.get("kind") == "tombstone":
            tombstones.append(rid)
            applied.append(
                MirroredChange(resource_id=rid, kind="tombstone", code=None, origin_division=origin["division_code"])
            )
            continue
        try:
            snapshot = ResourceSnapshot.model_validate(
                {k: v for k, v in change["snapshot"].items() if k != "origin"}
            ).model_dump(mode="json")
        except (ValidationError, AttributeError, TypeError):
            refused.add(rid)
            continue
        if (
            change.get("kind") != "upsert"
            or snapshot["id"] != rid
            or not snapshot.get("code")
            or not snapshot.get("publish_date")
            or not snapshot["cross_level"]
        ):
            refused.add(rid)
            continue
        upsert, live = await mirrored_rows(change, snapshot, origin, peer, actor=actor, now=now)
        upserts.append(upsert)
        published.append(live)
        applied.append(
            MirroredChange(
                resource_id=rid, kind="upsert", code=snapshot["code"], origin_division=origin["division_code"]
            )
        )
    await put_live(uow, upserts, published)
    await take_out(uow, tombstones, peer, actor=actor, now=now)
    return page_done(uow, peer, page, applied, refused)
