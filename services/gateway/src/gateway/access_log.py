"""Every request, allowed or denied, becomes a gateway.access event.

Events are written through the outbox like any other, but in small batches (every 20 ms or 500 events) so
that logging every request does not cost every request a transaction. On shutdown the buffer is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from govshare_common.db import Database
from govshare_common.identifiers import hash_identifier

from gateway.events import Access

log = logging.getLogger("govshare.gateway.access")


class AccessRecorder:
    def __init__(self, db: Database, *, max_batch: int = 500, interval: float = 0.02) -> None:
        self.db = db
        self.max_batch = max_batch
        self.interval = interval
        self._queue: asyncio.Queue[Access] = asyncio.Queue(maxsize=100_000)
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    def record(self, access: Access) -> None:
        try:
            self._queue.put_nowait(access)
        except asyncio.QueueFull:
            log.error("access log buffer full: the database is not keeping up; request %s", access.request_id)

    async def flush(self) -> int:
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        batch: list[Access] = []
        while not self._queue.empty() and len(batch) < self.max_batch:
            batch.append(self._queue.get_nowait())
        if not batch:
            return 0
        async with self.db.unit_of_work() as uow:
            for access in batch:
                uow.emit("gateway.access", access.principal or "anonymous", access)
        return len(batch)

    async def _run(self) -> None:
        while True:
            try:
                if await self.flush() < self.max_batch:
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing access events failed; retrying")
                await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-access-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        while await self.flush():
            pass

    async def drain(self) -> None:
        """Tests: wait until everything recorded so far is in the outbox."""
        while await self.flush():
            pass


def hashed_subjects(values: list[str], key: bytes) -> list[str]:
    return [hash_identifier(v, key=key) for v in values if v]
