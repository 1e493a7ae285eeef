"""exchange-svc's own projections of other services' state, kept from their events (never from their schemas).

From catalog-svc: every published resource with its data items, share type and update cycle, and the peer
register (`govshare_common.peer_register`). From request-svc: every grant with its items, unmasked items,
purposes and validity, and for a cross-level grant the peer its consumer's request came through
(docs/event-contracts.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text

from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope
from govshare_common.peer_register import follow

catalog = Subscription(source="catalog")
follow(catalog)  # the peer register: peers and mirrored resources, as catalog-svc registers and mirrors them
grants = Subscription(source="request")


def _ts(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@catalog.on("catalog.resource.published", "catalog.resource.updated")
async def _published(env: Envelope, uow: UnitOfWork) -> None:
    d = env.data
    snap = d["published"]
    await uow.execute(
        text(
            "INSERT INTO resource (code, resource_id, provider_code, provider_name, name, resource_class, share_type, "
            "format_category, share_method_type, update_cycle, data_items, version, status, published_at, open_to_public) "
            "VALUES (:code, :rid, :provider, :provider_name, :name, :class, :share_type, :format, :method, :cycle, "
            "CAST(:items AS jsonb), :version, 'published', :at, :open) ON CONFLICT (code) DO UPDATE SET "
            "resource_id = excluded.resource_id, provider_code = excluded.provider_code, "
            "provider_name = excluded.provider_name, name = excluded.name, resource_class = excluded.resource_class, "
            "share_type = excluded.share_type, format_category = excluded.format_category, "
            "share_method_type = excluded.share_method_type, update_cycle = excluded.update_cycle, "
            "data_items = excluded.data_items, version = excluded.version, status = 'published', "
            "open_to_public = excluded.open_to_public"
        ),
        {
            "code": d.get("code") or snap["code"],
            "rid": d["resource_id"],
            "provider": d["provider_code"],
            "provider_name": d.get("provider_name") or snap.get("provider_name") or "",
            "name": snap["name"],
            "class": snap["resource_class"],
            "share_type": snap["share_type"],
            "format": snap["format_category"],
            "method": snap.get("share_method_type"),
            "cycle": snap["update_cycle"],
            "items": json.dumps(snap.get("data_items") or [], ensure_ascii=False),
            "version": d["version"],
            "at": env.time,
            "open": bool(snap.get("open_to_public")),
        },
    )


@catalog.on("catalog.resource.withdrawn")
async def _withdrawn(env: Envelope, uow: UnitOfWork) -> None:
    code = env.data.get("code") or env.data["published"]["code"]
    await uow.execute(text("UPDATE resource SET status = 'withdrawn' WHERE code = :code"), {"code": code})


@grants.on("grant.issued")
async def _grant_issued(env: Envelope, uow: UnitOfWork) -> None:
    d = env.data
    await uow.execute(
        text(
            "INSERT INTO grant_projection (grant_id, consumer_code, provider_code, resource_code, items, unmasked_items, "
            "purposes, valid_from, valid_until, status, updated_at, consumer_platform) VALUES (:id, :consumer, "
            ":provider, :resource, :items, :unmasked, :purposes, :vf, :vu, 'active', :at, :platform) "
            "ON CONFLICT (grant_id) DO UPDATE SET consumer_platform = excluded.consumer_platform, "
            "consumer_code = excluded.consumer_code, provider_code = excluded.provider_code, "
            "resource_code = excluded.resource_code, items = excluded.items, unmasked_items = excluded.unmasked_items, "
            "purposes = excluded.purposes, valid_from = excluded.valid_from, valid_until = excluded.valid_until, "
            "status = 'active', updated_at = excluded.updated_at"
        ),
        {
            "id": d["grant_id"],
            "consumer": d["consumer_code"],
            "provider": d.get("provider_code") or "",
            "resource": d["resource_code"],
            "items": list(d.get("items") or []),
            "unmasked": list(d.get("unmasked_items") or []),
            "purposes": list(d.get("purposes") or []),
            "vf": _ts(d.get("valid_from")),
            "vu": _ts(d.get("valid_until")),
            "at": env.time,
            "platform": d.get("consumer_platform"),
        },
    )


async def _ended(env: Envelope, uow: UnitOfWork, status: str) -> None:
    await uow.execute(
        text("UPDATE grant_projection SET status = :s, updated_at = :at WHERE grant_id = :id"),
        {"s": status, "id": env.data["grant_id"], "at": env.time},
    )


@grants.on("grant.revoked")
async def _grant_revoked(env: Envelope, uow: UnitOfWork) -> None:
    await _ended(env, uow, "revoked")


@grants.on("grant.expired")
async def _grant_expired(env: Envelope, uow: UnitOfWork) -> None:
    await _ended(env, uow, "expired")
