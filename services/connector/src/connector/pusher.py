"""Push: the spool of one source drained to the hosted library's ingest, batch by batch, in source order.

A batch is cut by size (push.batch_max_rows) and by time (it goes once its oldest change has waited
push.batch_max_wait_seconds, or at once when full), recorded as in flight with its id before it is sent, and
leaves the spool only when the platform has it. After a crash or a lost answer the same batch (same id) is sent
again, which the platform answers as a replay. While the platform is away the spool holds the backlog and
this loop retries with capped backoff; when it is back the backlog drains in order. Rows the platform refuses
go to the dead letters and the rest of their batch is sent on under a derived id: one bad row never blocks
the source.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from connector.config import PushSection, SourceSection
from connector.domain import batching
from connector.platform import Platform, PlatformRefused, PlatformUnavailable
from connector.state import State

log = logging.getLogger("govshare.connector.push")

ROW_REFUSALS = frozenset({"batch_rejected", "uscc_unconfirmed"})


class Pusher:
    def __init__(self, cfg: SourceSection, push: PushSection, state: State, platform: Platform) -> None:
        self.cfg = cfg
        self.push = push
        self.state = state
        self.platform = platform
        self.wake = asyncio.Event()

    async def step(self) -> bool:
        """Send one batch if one is due; True if something was sent (so the caller loops at once)."""
        source = self.cfg.name
        batch = await self.state.inflight(source)
        if batch is None:
            pending, oldest = await self.state.oldest(source, self.push.batch_max_rows)
            if not pending:
                return False
            full = len(pending) >= self.push.batch_max_rows
            waited = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
            if not full and waited < self.push.batch_max_wait_seconds:
                await asyncio.sleep(self.push.batch_max_wait_seconds - waited)
                return True
            rows = batching.cut(pending, self.push.batch_max_rows)
            batch = await self.state.begin(
                source, batching.batch_id(source, rows[0].position, rows[-1].position), rows[0].seq, rows[-1].seq
            )
        else:  # resumed after a crash or a refusal: what is left of the batch in flight
            rows = await self.state.batch_rows(source, batch)
        if not rows:
            await self.state.done(source, batch, rows)
            return True
        try:
            await self.platform.ingest(self.cfg.resource, batch.batch_id, [batching.ingest_line(r) for r in rows])
        except PlatformRefused as exc:
            refused = batching.refused_rows(exc.details) if exc.code in ROW_REFUSALS else {}
            if refused:
                moved = await self.state.set_aside(
                    source, batch, refused, rows, batching.retry_id(batch.batch_id, batch.retries + 1)
                )
                await self.state.retried(source)
                log.warning("source %s: %d rows refused by the platform, kept as dead letters", source, moved)
                return True
            if exc.code == "empty_batch":
                await self.state.done(source, batch, [])
                return True
            raise
        await self.state.done(source, batch, rows)
        return True

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                sent = await self.step()
                delay = 0.5
                if not sent:
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), self.cfg.poll_seconds)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except (PlatformUnavailable, PlatformRefused, OSError) as exc:
                await self.state.note_error(self.cfg.name, f"push: {exc}")
                log.warning("source %s: push failed (%s); retrying in %.1f s", self.cfg.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.push.retry_max_seconds)
            except Exception as exc:
                log.exception("source %s: push step failed", self.cfg.name)
                await self.state.note_error(self.cfg.name, f"push: {type(exc).__name__}: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.push.retry_max_seconds)
