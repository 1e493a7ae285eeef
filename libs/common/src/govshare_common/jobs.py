"""Periodic jobs (deadlines, expiries, freshness) that run once per tick however many replicas there are.

Each run takes a transaction-scoped advisory lock named after the job; a replica that cannot take it skips the
tick. Jobs read time from the unit of work's clock, so tests move the clock and call `run_once`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text

from govshare_common.db import Database, UnitOfWork
from govshare_common.metrics import JOB_RUNS
from govshare_common.outbox import lock_key

log = logging.getLogger("govshare.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: float
    run: Callable[[UnitOfWork], Awaitable[None]]


class JobRunner:
    def __init__(self, db: Database, service: str, jobs: list[Job]) -> None:
        self.db = db
        self.service = service
        self.jobs = {j.name: j for j in jobs}

    async def run_once(self, name: str) -> bool:
        """Run one job now if no other replica is running it; True if it ran."""
        job = self.jobs[name]
        async with self.db.unit_of_work() as uow:
            got = (
                await uow.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_key(f"job:{self.db.schema}:{name}")}
                )
            ).scalar_one()
            if not got:
                JOB_RUNS.labels(self.service, name, "skipped").inc()
                return False
            await job.run(uow)
        JOB_RUNS.labels(self.service, name, "ok").inc()
        return True

    async def _loop(self, job: Job) -> None:
        while True:
            await asyncio.sleep(job.interval_seconds)
            try:
                await self.run_once(job.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                JOB_RUNS.labels(self.service, job.name, "failed").inc()
                log.exception("job %s failed; it runs again next tick", job.name)

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._loop(j), name=f"job:{j.name}") for j in self.jobs.values()]
