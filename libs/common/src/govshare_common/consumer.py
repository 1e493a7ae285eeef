"""Consuming other services' events exactly once, in order, even when the broker loses everything.

Each source service numbers its events with a gap-free `seq`. The inbox keeps, per source, the last seq this
service has handled, in the same transaction as the handling. So:
- a redelivered event (seq <= last) is skipped: handling is idempotent;
- an event that skips ahead (seq > last + 1) means the broker lost some: the missing ones are read from the
  source's outbox feed (GET /internal/events) and handled first;
- when Kafka is quiet the runner also asks each feed whether it is behind, which covers a fresh, empty broker
  and a service that starts behind.
Kafka is the fast path; the feed is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer
from opentelemetry import context, trace
from pydantic import ValidationError
from sqlalchemy import text

from govshare_common.db import Database, UnitOfWork
from govshare_common.events import Envelope
from govshare_common.internal_auth import HEADER, internal_token
from govshare_common.kafka import ensure_topics
from govshare_common.metrics import CONSUMER_LAG, EVENTS_HANDLED, GAPS_FILLED
from govshare_common.purpose_keys import PurposeKeys
from govshare_common.tracing import context_from_traceparent, exporting_spans

log = logging.getLogger("govshare.consumer")
_tracer = trace.get_tracer("govshare.consumer")

# How long an out-of-order event waits for the events before it to arrive by Kafka before the gap is read
# from the source's feed.
GAP_PATIENCE_SECONDS = 0.5

Handler = Callable[[Envelope, UnitOfWork], Awaitable[None]]


@dataclass
class Subscription:
    """What a service consumes from one source service: handlers by event type ("*" for every type)."""

    source: str
    handlers: dict[str, Handler] = field(default_factory=dict)

    def on(self, *types: str) -> Callable[[Handler], Handler]:
        def wrap(fn: Handler) -> Handler:
            for t in types:
                self.handlers[t] = fn
            return fn

        return wrap

    def handler_for(self, type_: str) -> Handler | None:
        return self.handlers.get(type_) or self.handlers.get("*")


class FeedGone(RuntimeError):
    """The source no longer keeps the events we need (past its outbox retention)."""


class FeedClient:
    def __init__(self, urls: dict[str, str], *, keys: PurposeKeys, caller: str, timeout: float = 10.0) -> None:
        self.urls = urls
        self.keys = keys
        self.caller = caller
        self.http = httpx.AsyncClient(timeout=timeout)

    async def fetch(self, source: str, *, after: int, limit: int = 1000) -> tuple[list[Envelope], int]:
        """Events with seq > after, and the source's head seq."""
        resp = await self.http.get(
            f"{self.urls[source].rstrip('/')}/internal/events",
            params={"after": after, "limit": limit},
            headers={HEADER: internal_token(self.keys, self.caller)},
        )
        if resp.status_code == 410:
            raise FeedGone(resp.json().get("message", "feed gone"))
        resp.raise_for_status()
        body = resp.json()
        return [Envelope.model_validate(e) for e in body["events"]], int(body["head"])

    async def close(self) -> None:
        await self.http.aclose()


class Inbox:
    """Applies envelopes of one source in seq order inside one unit of work."""

    def __init__(self, db: Database, feed: FeedClient, service: str, subscriptions: list[Subscription]) -> None:
        self.db = db
        self.feed = feed
        self.service = service
        self.subscriptions = {s.source: s for s in subscriptions}

    async def apply(
        self, source: str, envelopes: Iterable[Envelope], *, via: str = "kafka", fill_gaps: bool = True
    ) -> tuple[int, list[Envelope]]:
        """Handle, in seq order, what follows this service's cursor for `source`.

        With fill_gaps, a hole before an envelope is read from the source's feed first; without, handling
        stops at the first hole and the envelopes beyond it are returned to be held (Kafka partitions
        interleave, so a hole is usually just an event still on its way).
        """
        sub = self.subscriptions[source]
        ordered = sorted(envelopes, key=lambda e: e.seq)
        handled = 0
        held: list[Envelope] = []
        async with self.db.unit_of_work() as uow:
            last = await self._lock_cursor(uow, source)
            start = last
            for i, env in enumerate(ordered):
                if env.seq <= last:
                    continue
                if env.seq > last + 1:
                    if not fill_gaps:
                        held = [e for e in ordered[i:] if e.seq > last]
                        break
                    filled = await self._fill_gap(uow, sub, last, env.seq - 1)
                    handled += filled - last
                    last = filled
                await self._handle(uow, sub, env)
                last = env.seq
                handled += 1
            if last != start:
                await uow.execute(
                    text("UPDATE inbox SET last_seq = :seq, updated_at = now() WHERE source = :source"),
                    {"seq": last, "source": source},
                )
        if handled:
            EVENTS_HANDLED.labels(self.service, source, via).inc(handled)
        return handled, held

    async def catch_up(self, source: str) -> int:
        """Read the source's feed until this service has handled everything the source has sequenced."""
        total = 0
        while True:
            async with self.db.engine.connect() as conn:
                last = (
                    await conn.execute(text("SELECT last_seq FROM inbox WHERE source = :s"), {"s": source})
                ).scalar_one_or_none() or 0
            events, head = await self.feed.fetch(source, after=last, limit=1000)
            CONSUMER_LAG.labels(self.service, source).set(max(0, head - last))
            if not events:
                return total
            handled, _ = await self.apply(source, events, via="feed")
            total += handled
            if events[-1].seq >= head:
                CONSUMER_LAG.labels(self.service, source).set(0)
                return total

    async def _lock_cursor(self, uow: UnitOfWork, source: str) -> int:
        await uow.execute(
            text("INSERT INTO inbox (source, last_seq) VALUES (:s, 0) ON CONFLICT (source) DO NOTHING"),
            {"s": source},
        )
        row = await uow.execute(text("SELECT last_seq FROM inbox WHERE source = :s FOR UPDATE"), {"s": source})
        return int(row.scalar_one())

    async def _fill_gap(self, uow: UnitOfWork, sub: Subscription, last: int, until: int) -> int:
        while last < until:
            events, _ = await self.feed.fetch(sub.source, after=last, limit=min(1000, until - last))
            events = [e for e in events if e.seq <= until]
            if not events or events[0].seq != last + 1:
                raise FeedGone(f"{sub.source} feed does not have seq {last + 1}")
            for env in events:
                await self._handle(uow, sub, env)
                last = env.seq
            GAPS_FILLED.labels(self.service, sub.source).inc(len(events))
        return last

    async def _handle(self, uow: UnitOfWork, sub: Subscription, env: Envelope) -> None:
        handler = sub.handler_for(env.type)
        if handler is None:
            return
        if not exporting_spans():
            # A span per event costs more than most handlers; only worth it when someone collects them.
            await handler(env, uow)
            return
        token = context.attach(context_from_traceparent(env.traceparent))
        try:
            with _tracer.start_as_current_span(
                f"handle {env.type}", attributes={"govshare.source": env.source, "govshare.seq": env.seq}
            ):
                await handler(env, uow)
        finally:
            context.detach(token)


class ConsumerRunner:
    """The consumer-group loop: Kafka batches in, one transaction per source per batch, commit after."""

    def __init__(
        self,
        inbox: Inbox,
        *,
        bootstrap: str,
        group_id: str,
        topics: dict[str, str],
        partitions: int = 3,
        catchup_interval: float = 2.0,
    ) -> None:
        self.inbox = inbox
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topic_to_source = {t: s for s, t in topics.items()}
        self.partitions = partitions
        self.catchup_interval = catchup_interval
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._failing: set[str] = set()
        self._held: dict[str, dict[int, Envelope]] = {}
        self._gap_since: dict[str, float] = {}
        self._last_kafka: dict[str, float] = {}

    async def run(self) -> None:
        """Kafka and the feeds run side by side: the feeds keep events flowing while Kafka is sick."""
        await asyncio.gather(self._kafka_loop(), self._catch_up_loop())

    async def _catch_up_loop(self) -> None:
        while not self._stopping.is_set():
            await self._catch_up_all()
            try:
                await asyncio.wait_for(self._stopping.wait(), self.catchup_interval)
            except TimeoutError:
                pass

    async def _kafka_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                consumer = await self._ensure_consumer()
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                by_source: dict[str, list[Envelope]] = {}
                for tp, messages in batch.items():
                    source = self.topic_to_source.get(tp.topic)
                    if source is None:
                        continue
                    for msg in messages:
                        try:
                            by_source.setdefault(source, []).append(Envelope.model_validate_json(msg.value))
                        except ValidationError:
                            log.error("dropping a malformed message on %s at offset %s", tp.topic, msg.offset)
                now = time.monotonic()
                for source, envelopes in by_source.items():
                    self._last_kafka[source] = now
                    held = self._held.setdefault(source, {})
                    held.update((e.seq, e) for e in envelopes)
                for source in [s for s, h in self._held.items() if h]:
                    await self._apply_held(source)
                if batch:
                    try:
                        await consumer.commit()
                    except Exception as exc:  # a rebalance; the inbox makes the redelivery harmless
                        log.info("offset commit skipped: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer %s: %s; reconnecting, feeds keep events flowing", self.group_id, exc)
                await self._drop_consumer()
                await asyncio.sleep(1.0)

    async def _apply_held(self, source: str) -> None:
        held = self._held[source]
        waited = time.monotonic() - self._gap_since.get(source, time.monotonic())
        _, remaining = await self.inbox.apply(source, held.values(), fill_gaps=waited >= GAP_PATIENCE_SECONDS)
        self._held[source] = {e.seq: e for e in remaining}
        if remaining:
            self._gap_since.setdefault(source, time.monotonic())
        else:
            self._gap_since.pop(source, None)

    async def _catch_up_all(self) -> None:
        now = time.monotonic()
        for source in self.inbox.subscriptions:
            # While Kafka delivers a source's events, the feed has nothing to add.
            if now - self._last_kafka.get(source, 0.0) < self.catchup_interval and not self._held.get(source):
                continue
            try:
                await self.inbox.catch_up(source)
                self._failing.discard(source)
            except Exception as exc:
                # Once per outage, not every tick: a source that is down for an hour is one warning.
                level = logging.DEBUG if source in self._failing else logging.WARNING
                log.log(level, "catch-up from %s failed: %s", source, exc)
                self._failing.add(source)

    async def _ensure_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            topics = list(self.topic_to_source)
            await ensure_topics(self.bootstrap, topics, self.partitions)
            consumer = AIOKafkaConsumer(
                *topics,
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                metadata_max_age_ms=5000,
                session_timeout_ms=10000,
                heartbeat_interval_ms=2000,
            )
            try:
                await consumer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)
                raise
            self._consumer = consumer
        return self._consumer

    async def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await asyncio.wait_for(consumer.stop(), 5)
            except Exception as exc:
                log.debug("consumer stop failed: %s", exc)

    async def stop(self) -> None:
        self._stopping.set()
        await self._drop_consumer()
