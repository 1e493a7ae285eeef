"""What a service that answers or makes peer calls keeps of catalog-svc's federation: the peer platforms as the
platform office registered them (`catalog.federation.peer.registered|changed`: where to call, whose signature
to accept) and the resources mirrored here from other platforms (`catalog.federation.changes.mirrored`: which
platform owns each, and through which peer it came), plus the nonces of peer calls it has seen.

request-svc and exchange-svc each keep these tables in their own schema (`TABLES`, created by their
migrations), learnt from the same events by the same handlers (`follow`), so the two agree on every peer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope
from govshare_common.federation_codes import mirrored_code
from govshare_common.message_signatures import REPLAY_WINDOW_SECONDS

TABLES = (
    """
    CREATE TABLE federation_peer (
        division_code text PRIMARY KEY,
        name text NOT NULL,
        level text NOT NULL,
        relation text NOT NULL,
        base_url text NOT NULL,
        public_key text NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE mirrored_resource (
        resource_id text PRIMARY KEY,
        code text NOT NULL,
        origin_code text NOT NULL,
        origin_division text NOT NULL,
        via_peer text NOT NULL,
        withdrawn boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX mirrored_resource_code ON mirrored_resource (code)",
    """
    CREATE TABLE federation_nonce (
        keyid text NOT NULL,
        nonce text NOT NULL,
        seen_at timestamptz NOT NULL,
        PRIMARY KEY (keyid, nonce)
    )
    """,
    "CREATE INDEX federation_nonce_seen ON federation_nonce (seen_at)",
)
DROP_TABLES = ("DROP TABLE federation_nonce", "DROP TABLE mirrored_resource", "DROP TABLE federation_peer")


def follow(catalog: Subscription) -> None:
    """Keep the register from catalog-svc's federation events (on the service's own catalog subscription)."""
    catalog.on("catalog.federation.peer.registered", "catalog.federation.peer.changed")(_peer)
    catalog.on("catalog.federation.changes.mirrored")(_mirrored)


async def _peer(env: Envelope, uow: UnitOfWork) -> None:
    d = env.data
    await upsert_peer(
        uow.conn,
        {
            "division_code": str(d["division_code"]),
            "name": str(d["name"]),
            "level": str(d["level"]),
            "relation": str(d["relation"]),
            "base_url": str(d["base_url"]).rstrip("/"),
            "public_key": str(d["public_key"]),
            "now": uow.clock.now(),
        },
    )


async def _mirrored(env: Envelope, uow: UnitOfWork) -> None:
    now = uow.clock.now()
    rows = []
    gone = []
    for change in env.data.get("changes", []):
        if not change.get("code"):
            # A tombstone names only the id (the parent's feed downward): the resource is no longer shared here.
            if change.get("kind") == "tombstone":
                gone.append(str(change["resource_id"]))
            continue
        rows.append(
            {
                "resource_id": str(change["resource_id"]),
                "code": mirrored_code(str(change["origin_division"]), str(change["code"])),
                "origin_code": str(change["code"]),
                "origin_division": str(change["origin_division"]),
                "via_peer": str(env.data["peer"]),
                "withdrawn": change["kind"] == "tombstone",
                "now": now,
            }
        )
    await mirror(uow.conn, rows)
    if gone:
        await uow.conn.execute(
            text("UPDATE mirrored_resource SET withdrawn = true, updated_at = :now WHERE resource_id = ANY(:ids)"),
            {"now": now, "ids": gone},
        )


async def upsert_peer(conn: Any, row: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "INSERT INTO federation_peer (division_code, name, level, relation, base_url, public_key, updated_at) "
            "VALUES (:division_code, :name, :level, :relation, :base_url, :public_key, :now) "
            "ON CONFLICT (division_code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level, "
            "relation = EXCLUDED.relation, base_url = EXCLUDED.base_url, public_key = EXCLUDED.public_key, "
            "updated_at = EXCLUDED.updated_at"
        ),
        row,
    )


async def peer(conn: Any, division_code: str) -> dict[str, Any] | None:
    r = (
        await conn.execute(
            text(
                "SELECT division_code, name, level, relation, base_url, public_key FROM federation_peer "
                "WHERE division_code = :c"
            ),
            {"c": division_code},
        )
    ).one_or_none()
    return dict(r._mapping) if r is not None else None


async def peers(conn: Any) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(
        text("SELECT division_code, name, level, relation, base_url, public_key FROM federation_peer")
    )
    return {r.division_code: dict(r._mapping) for r in rows}


async def mirror(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Each change the catalog mirrored: a resource another platform owns (upserts), or no longer (tombstones)."""
    if not rows:
        return
    await conn.execute(
        text(
            "INSERT INTO mirrored_resource (resource_id, code, origin_code, origin_division, via_peer, withdrawn, "
            "updated_at) VALUES (:resource_id, :code, :origin_code, :origin_division, :via_peer, :withdrawn, :now) "
            "ON CONFLICT (resource_id) DO UPDATE SET code = EXCLUDED.code, origin_code = EXCLUDED.origin_code, "
            "origin_division = EXCLUDED.origin_division, via_peer = EXCLUDED.via_peer, "
            "withdrawn = EXCLUDED.withdrawn, updated_at = EXCLUDED.updated_at"
        ),
        rows,
    )


async def mirrored(conn: Any, code: str) -> dict[str, Any] | None:
    r = (
        await conn.execute(
            text(
                "SELECT resource_id, code, origin_code, origin_division, via_peer, withdrawn FROM mirrored_resource "
                "WHERE code = :c ORDER BY withdrawn, updated_at DESC LIMIT 1"
            ),
            {"c": code},
        )
    ).one_or_none()
    return dict(r._mapping) if r is not None else None


async def remember_nonce(conn: Any, keyid: str, nonce: str, *, now: datetime) -> bool:
    result = await conn.execute(
        text(
            "INSERT INTO federation_nonce (keyid, nonce, seen_at) VALUES (:k, :n, :now) "
            "ON CONFLICT (keyid, nonce) DO NOTHING"
        ),
        {"k": keyid, "n": nonce, "now": now},
    )
    return bool(result.rowcount)


async def forget_nonces(conn: Any, *, before: datetime) -> None:
    await conn.execute(text("DELETE FROM federation_nonce WHERE seen_at < :before"), {"before": before})


async def forget_old_nonces(uow: UnitOfWork) -> None:
    """A job: nonces outlive the replay window twice over; a message older than that is refused for `created`."""
    await forget_nonces(uow.conn, before=uow.clock.now() - timedelta(seconds=2 * REPLAY_WINDOW_SECONDS))
