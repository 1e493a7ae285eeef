"""Periodic jobs (deadlines, expiries, freshness) that run once per tick however many replicas there are.

Time is cut into ticks of the job's interval. Every replica wakes at the start of each tick and tries to take
it: a transaction-scoped advisory lock named after the job (a replica that cannot take it skips at once,
without waiting), then the job's row in `job_tick`, moved to this tick only if it was on an earlier one. The
job runs in that same transaction, so a tick is taken exactly when its run commits; a run that fails leaves
the tick to another replica. Jobs read time from the unit of work's clock, so tests move the clock and call
`run_tick`, or `run_once` to run a job now whatever the tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
        return await self._run(name, per_tick=False)

    async def run_tick(self, name: str) -> bool:
        """Run one job for the current tick unless a replica already has; True if this call ran it."""
        return await self._run(name, per_tick=True)

    async def _run(self, name: str, *, per_tick: bool) -> bool:
        job = self.jobs[name]
        async with self.db.unit_of_work() as uow:
            got = (
                await uow.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_key(f"job:{self.db.schema}:{name}")}
                )
            ).scalar_one()
            if got and per_tick:
                tick = int(uow.clock.now().timestamp() // job.interval_seconds)
                got = (
                    await uow.execute(
                        text(
                            "INSERT INTO job_tick (job, last_tick) VALUES (:job, :tick) ON CONFLICT (job) DO UPDATE "
                            "SET last_tick = excluded.last_tick WHERE job_tick.last_tick < excluded.last_tick "
                            "RETURNING 1"
                        ),
                        {"job": name, "tick": tick},
                    )
                ).scalar_one_or_none() is not None
            if not got:
                JOB_RUNS.labels(self.service, name, "skipped").inc()
                return False
            await job.run(uow)
        JOB_RUNS.labels(self.service, name, "ok").inc()
        return True

    async def _loop(self, job: Job) -> None:
        while True:
            # Wake just after the next tick starts, so replicas meet on the same tick.
            await asyncio.sleep(job.interval_seconds - time.time() % job.interval_seconds + 0.05)
            try:
                await self.run_tick(job.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                JOB_RUNS.labels(self.service, job.name, "failed").inc()
                log.exception("job %s failed; it runs again next tick", job.name)

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._loop(j), name=f"job:{j.name}") for j in self.jobs.values()]
