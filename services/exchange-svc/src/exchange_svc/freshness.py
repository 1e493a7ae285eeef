"""Freshness (R3.6): the job that flags a hosted resource whose provider missed its update cycle."""

from __future__ import annotations

import logging

from sqlalchemy import text

from govshare_common.db import UnitOfWork

from exchange_svc.domain.freshness import due_at
from exchange_svc.events import RESOURCE_STALE, ResourceStale

log = logging.getLogger("govshare.exchange.freshness")


async def mark_stale(uow: UnitOfWork) -> None:
    now = uow.clock.now()
    rows = (
        await uow.execute(
            text(
                "SELECT code, provider_code, update_cycle, published_at, last_ingest_at FROM resource "
                "WHERE status = 'published' AND stale_due_at IS NULL AND update_cycle <> 'irregular'"
            )
        )
    ).all()
    for r in rows:
        due = due_at(r.update_cycle, published_at=r.published_at, last_ingest_at=r.last_ingest_at)
        if due is None or now <= due:
            continue
        await uow.execute(text("UPDATE resource SET stale_due_at = :due WHERE code = :c"), {"due": due, "c": r.code})
        uow.emit(
            RESOURCE_STALE,
            r.code,
            ResourceStale(
                resource_code=r.code,
                provider_code=r.provider_code,
                update_cycle=r.update_cycle,
                last_ingest_at=r.last_ingest_at,
                due_at=due,
            ),
        )
        log.info("resource %s missed its %s update (due %s)", r.code, r.update_cycle, due.isoformat())
