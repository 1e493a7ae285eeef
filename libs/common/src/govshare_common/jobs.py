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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text

from govshare_common.db import Database, UnitOfWork
from govshare_common.metrics import JOB_RUNS
from govshare_common.outbox import lock_key
from govshare_common.replica import replica_name

log = logging.getLogger("govshare.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: float
    run: Callable[[UnitOfWork], Awaitable[None]]


class JobRunner:
    def __init__(
        self, db: Database, service: str, jobs: list[Job], *, intervals: Mapping[str, float] | None = None
    ) -> None:
        self.db = db
        self.service = service
        given = intervals or {}
        self.jobs = {j.name: replace(j, interval_seconds=given.get(j.name, j.interval_seconds)) for j in jobs}

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
                            "INSERT INTO job_tick (job, last_tick, first_tick, runs, ran_by, ran_at) "
                            "VALUES (:job, :tick, :tick, 1, :by, now()) ON CONFLICT (job) DO UPDATE "
                            "SET last_tick = excluded.last_tick, runs = job_tick.runs + 1, ran_by = excluded.ran_by, "
                            "ran_at = excluded.ran_at WHERE job_tick.last_tick < excluded.last_tick RETURNING 1"
                        ),
                        {"job": name, "tick": tick, "by": replica_name()},
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

    async def ticks(self) -> list[dict[str, Any]]:
        """Each job: its interval, the ticks it has run since its first, and which replica ran the last one."""
        async with self.db.engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT job, first_tick, last_tick, runs, ran_by, ran_at FROM job_tick"))
            ).mappings()
            taken = {r["job"]: dict(r) for r in rows}
        out = []
        for name, job in sorted(self.jobs.items()):
            row = taken.get(name, {})
            out.append(
                {
                    "job": name,
                    "interval_seconds": job.interval_seconds,
                    "first_tick": row.get("first_tick"),
                    "last_tick": row.get("last_tick"),
                    "runs": row.get("runs", 0),
                    "last_run_by": row.get("ran_by"),
                    "last_run_at": row.get("ran_at"),
                }
            )
        return out

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._loop(j), name=f"job:{j.name}") for j in self.jobs.values()]
