"""A child's catalog changes applied here: its published resources enter this catalog and its search, with their
origin platform and provider; its tombstones take them out again.

A child writes only what is its own to write: never one of this platform's resources, nor one mirrored through
another child (those ids are refused and named in the event). Applying a change twice is the same as once (each
is the resource's whole latest state), which is how a resync or a page fetched again changes nothing twice.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from govshare_common.db import UnitOfWork
from govshare_common.federation_codes import shown_here

from catalog_svc import search
from catalog_svc import store as catalog_store
from catalog_svc.events import CHANGES_MIRRORED, ChangesMirrored, MirroredChange, ResourceSnapshot
from catalog_svc.federation import store
from catalog_svc.flows import index_document

# A tsvector in PostgreSQL's text form, as the child's feed gives it: 'lexeme':1A,3B 'other':2C ...
# (no backslashes: what needs escaping is segmented here instead, so no text from a child can fail the cast).
_SEARCH_DOCUMENT = re.compile(r"^(?:'(?:[^'\\]|''){1,500}'(?::[0-9]+[A-D]?(?:,[0-9]+[A-D]?)*)? ?)*$")

MAX_DOCUMENT = 200_000  # PostgreSQL refuses a tsvector over 1 MB; a lexeme over 2 KB is kept out above


def origin_of(change: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    # A grandchild's resource comes with the origin the child recorded; the child's own, with the child as we
    # registered it.
    given = change.get("origin")
    if isinstance(given, dict) and isinstance(given.get("division_code"), str):
        return {
            "division_code": given["division_code"],
            "name": str(given.get("name", "")),
            "level": str(given.get("level", "")),
        }
    return {"division_code": peer["division_code"], "name": peer["name"], "level": peer["level"]}


async def apply(uow: UnitOfWork, peer: dict[str, Any], page: dict[str, Any]) -> int:
    """Apply one page of the child's feed; returns the cursor to keep (the page's last number)."""
    changes = [c for c in page["changes"] if isinstance(c, dict)]
    ids = [str(c.get("resource_id")) for c in changes]
    refused = await store.local_or_elsewhere(uow.conn, ids, peer["division_code"]) if ids else set()
    now = uow.clock.now()
    actor = f"peer:{peer['division_code']}"
    upserts: list[dict[str, Any]] = []
    published: list[dict[str, Any]] = []
    tombstones: list[str] = []
    fed: list[dict[str, Any]] = []
    applied: list[MirroredChange] = []
    latest: dict[str, dict[str, Any]] = {c["resource_id"]: c for c in changes if c["resource_id"] not in refused}
    for change in latest.values():
        origin = origin_of(change, peer)
        try:
            snapshot = ResourceSnapshot.model_validate(
                {k: v for k, v in change["snapshot"].items() if k != "origin"}
            ).model_dump(mode="json")
        except (ValidationError, AttributeError, TypeError):
            refused.add(change["resource_id"])
            continue
        if snapshot["id"] != change["resource_id"] or not snapshot.get("code") or not snapshot.get("publish_date"):
            refused.add(change["resource_id"])
            continue
        applied.append(
            MirroredChange(
                resource_id=snapshot["id"],
                kind=change["kind"],
                code=snapshot["code"],
                origin_division=origin["division_code"],
            )
        )
        fed.append(
            {"resource_id": snapshot["id"], "kind": change["kind"], "snapshot": snapshot, "origin": origin, "now": now}
        )
        if change["kind"] == "tombstone":
            tombstones.append(snapshot["id"])
            continue
        upsert, live = await mirrored_rows(change, snapshot, origin, peer, actor=actor, now=now)
        upserts.append(upsert)
        published.append(live)
    await put_live(uow, upserts, published)
    await take_out(uow, tombstones, peer, actor=actor, now=now)
    # Passed on in our own feed, for the platform above us.
    await store.record_changes(uow.conn, fed)
    return page_done(uow, peer, page, applied, refused)


def page_done(
    uow: UnitOfWork, peer: dict[str, Any], page: dict[str, Any], applied: list[MirroredChange], refused: set[str]
) -> int:
    """The page's event (what was applied and refused) when it changed anything; the cursor it moves to."""
    cursor = int(page["next"])
    if applied or refused:
        uow.emit(
            CHANGES_MIRRORED,
            peer["division_code"],
            ChangesMirrored(
                peer=peer["division_code"],
                after=int(page["after"]),
                cursor=cursor,
                changes=applied,
                refused=sorted(refused),
            ),
        )
    return cursor


async def mirrored_rows(
    change: dict[str, Any],
    snapshot: dict[str, Any],
    origin: dict[str, Any],
    peer: dict[str, Any],
    *,
    actor: str,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A peer's live resource as rows of this catalog: the resource (with its origin) and its published row."""
    shown = shown_here(snapshot, origin)
    code = shown["code"]
    upsert = {
        "resource_id": snapshot["id"],
        "provider_code": snapshot["provider_code"],
        "provider_name": snapshot["provider_name"],
        "name": snapshot["name"],
        "code": code,
        "version": snapshot["version"],
        "actor": actor,
        "now": now,
        "origin_division": origin["division_code"],
        "peer": peer["division_code"],
        "origin": origin,
        "origin_code": snapshot["code"],
        "seq": change["seq"],
    }
    document = change.get("document")
    if not isinstance(document, str) or len(document) > MAX_DOCUMENT or not _SEARCH_DOCUMENT.match(document):
        document = await index_document(ResourceSnapshot.model_validate(snapshot))
    return upsert, catalog_store.published_row(shown, document)


async def put_live(uow: UnitOfWork, upserts: list[dict[str, Any]], published: list[dict[str, Any]]) -> None:
    await store.upsert_mirrored(uow.conn, upserts)
    if published:
        await catalog_store.upsert_published(uow.conn, published)
        await search.index_postings(uow.conn, [r["resource_id"] for r in published])


async def take_out(uow: UnitOfWork, tombstones: list[str], peer: dict[str, Any], *, actor: str, now: datetime) -> None:
    """What this peer mirrored here and now tombstoned leaves the catalog and search."""
    gone = sorted(await store.mirrored_ids(uow.conn, tombstones, peer["division_code"])) if tombstones else []
    if gone:
        await search.remove_postings(uow.conn, gone)
        await store.remove_mirrored(uow.conn, gone, actor=actor, now=now, reason="withdrawn at its origin platform")
