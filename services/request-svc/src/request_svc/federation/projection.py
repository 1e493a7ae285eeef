"""What catalog-svc's federation events tell request-svc: the peer platforms as the platform office registered
them (where to send a request, whose signature to accept) and the resources mirrored here from other platforms
(which platform owns each, and through which peer it came)."""

from __future__ import annotations

from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope
from govshare_common.federation_codes import mirrored_code

from request_svc.events import catalog
from request_svc.federation import store


@catalog.on("catalog.federation.peer.registered", "catalog.federation.peer.changed")
async def _peer(env: Envelope, uow: UnitOfWork) -> None:
    d = env.data
    await store.upsert_peer(
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


@catalog.on("catalog.federation.changes.mirrored")
async def _mirrored(env: Envelope, uow: UnitOfWork) -> None:
    now = uow.clock.now()
    rows = []
    for change in env.data.get("changes", []):
        if not change.get("code"):
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
    await store.mirror(uow.conn, rows)
