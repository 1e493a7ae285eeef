"""Consuming every topic: each event is appended to the chained log exactly once and projected for supervision.

The inbox hands events to handlers one at a time inside one transaction per batch; the handler only collects
them, and the whole batch is chained and written with one COPY just before that transaction commits (with the
inbox cursor, so a batch is logged together with the cursor that says it was handled, or not at all).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from govshare_common.calendar_store import YEAR_PUBLISHED, published_year_change
from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope

from audit_svc import deadlines, projections
from audit_svc.ledger import Ledger

SOURCES = ("gateway", "catalog", "request", "exchange", "audit")

ENTRIES = Counter("govshare_audit_entries_total", "events appended to the audit log", ["source"])
APPEND_SECONDS = Histogram(
    "govshare_audit_append_seconds",
    "time to chain and write one batch",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INGEST_LAG = Gauge(
    "govshare_audit_ingest_lag_seconds",
    "age of the newest event just appended to the audit log, per source (how far ingest trails the platform)",
    ["source"],
)

_BATCH_ATTR = "_audit_batch"


class Ingest:
    """Holds what handlers need that only exists once the app has started (its calendar)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.app: Any = None

    async def write(self, uow: UnitOfWork, envelopes: list[Envelope]) -> None:
        started = time.perf_counter()
        appended = await self.ledger.append(uow.conn, envelopes, now=uow.clock.now())
        if not appended.count:
            return
        await projections.apply(uow, self.app.state.calendar, self.app.state.profile, appended.envelopes)
        APPEND_SECONDS.observe(time.perf_counter() - started)
        now = uow.clock.now()
        newest: dict[str, Envelope] = {}
        for env in appended.envelopes:
            newest[env.source_service] = env
            ENTRIES.labels(env.source_service).inc()
        for source, env in newest.items():
            INGEST_LAG.labels(source).set(max(0.0, (now - env.time).total_seconds()))

    def _batch(self, uow: UnitOfWork) -> list[Envelope]:
        """The events of this unit of work, written in one batch just before it commits."""
        batch: list[Envelope] | None = uow.__dict__.get(_BATCH_ATTR)
        if batch is None:
            pending: list[Envelope] = []
            uow.__dict__[_BATCH_ATTR] = pending

            async def write_batch() -> None:
                if not pending:
                    return
                try:
                    await self.write(uow, pending)
                except BaseException:
                    self.ledger.forget_months()
                    raise

            uow.before_commit(write_batch)
            batch = pending
        return batch

    async def handle(self, env: Envelope, uow: UnitOfWork) -> None:
        self._batch(uow).append(env)

    async def handle_calendar_year(self, env: Envelope, uow: UnitOfWork) -> None:
        """The gateway's calendar year: logged like everything else, applied to this service's calendar, and
        the running notice and complaint deadlines recounted on it."""
        before, after, year = await published_year_change(self.app.state.calendar, uow, env)
        await deadlines.recount(uow, before, after, year=year)
        await self.handle(env, uow)

    def subscriptions(self) -> list[Subscription]:
        subs = []
        for source in SOURCES:
            sub = Subscription(source=source)
            sub.handlers["*"] = self.handle
            if source == "gateway":
                # Named explicitly: the platform's calendar handler would otherwise take this type from "*".
                sub.handlers[YEAR_PUBLISHED] = self.handle_calendar_year
            subs.append(sub)
        return subs
