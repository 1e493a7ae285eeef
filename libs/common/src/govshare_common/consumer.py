"""Consuming other services' events exactly once, in per-aggregate order, even when the broker loses everything.

Each source service numbers its events with a gap-free `seq`, and puts each aggregate's events on one Kafka
partition; every event also carries `prev`, the seq of the source's event before it on that partition. The
inbox keeps, per source partition, the last seq this service has handled there, in the same transaction as the
handling. So:
- a redelivered event (seq <= cursor) is skipped: handling is idempotent;
- an event whose `prev` is beyond the cursor means the broker lost some: after a short patience the missing
  ones are read from the source's feed (GET /internal/events?partition=…), outside any transaction, in
  bounded chunks, each handled in its own;
- a partition Kafka is silent about is read from the feed, which covers a fresh, empty broker and a service
  that starts behind; one that is behind the source's retention rebuilds from what the source kept (each
  aggregate's newest event) and says so;
- replicas split the partitions through the consumer group; a cursor row per partition means they never
  wait on each other, and its row lock keeps a partition that moves mid-batch exactly-once;
- a handler that fails on an event sets that event aside (quarantine) with its error, and the aggregate's
  later events wait behind it; everything else keeps flowing;
- a message on the broker whose signature is not its source's is refused and logged: it cannot take the
  place of the genuine event.
Kafka is the road; the feed is the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry import context, trace
from pydantic import ValidationError
from sqlalchemy import text

from govshare_common import quarantine
from govshare_common.db import Database, UnitOfWork
from govshare_common.envelope_signing import SIGNATURE_HEADER, EnvelopeVerifier
from govshare_common.errors import AppError, NotFound
from govshare_common.events import Envelope, source_uri
from govshare_common.internal_auth import HEADER, internal_token
from govshare_common.kafka import PLAINTEXT, KafkaSecurity, ensure_topics
from govshare_common.metrics import (
    CATCH_UP_READS,
    CONSUMER_ASSIGNED,
    CONSUMER_LAG,
    EVENTS_HANDLED,
    EVENTS_REFUSED,
    GAP_FILLS,
    GAPS_FILLED,
    QUARANTINE_HELD,
    QUARANTINED,
    SNAPSHOT_REBUILDS,
)
from govshare_common.purpose_keys import PurposeKeys
from govshare_common.replica import replica_name
from govshare_common.tracing import context_from_traceparent, exporting_spans

log = logging.getLogger("govshare.consumer")
_tracer = trace.get_tracer("govshare.consumer")

# How long an event after a hole waits for the events before it to arrive by Kafka before the hole is read
# from the source's feed.
GAP_PATIENCE_SECONDS = 0.5
FEED_CHUNK = 1000
# Beyond this many events held behind a hole, the partition is paused on Kafka until the hole is filled.
MAX_HELD = 20_000
# A handler that fails is tried this many times (with each later batch or catch-up tick) before its event is
# quarantined: a failure that only meant "too early" passes, a poison event does not hold its partition long.
QUARANTINE_AFTER_FAILURES = 4

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
    """The source no longer keeps every event we need (past its outbox retention)."""


@dataclass(frozen=True)
class FeedPage:
    events: list[Envelope]
    head: int
    pruned_through: int


class FeedClient:
    def __init__(self, urls: dict[str, str], *, keys: PurposeKeys, caller: str, timeout: float = 10.0) -> None:
        self.urls = urls
        self.keys = keys
        self.caller = caller
        self.http = httpx.AsyncClient(timeout=timeout)

    async def fetch(
        self,
        source: str,
        *,
        after: int,
        limit: int = FEED_CHUNK,
        partition: int | None = None,
        snapshot: bool = False,
    ) -> FeedPage:
        """Events with seq > after (of one partition), the head seq (of that partition) and how far the
        source has pruned. With `snapshot`, what the source kept past its retention comes too."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        if partition is not None:
            params["partition"] = partition
        if snapshot:
            params["snapshot"] = "true"
        resp = await self.http.get(
            f"{self.urls[source].rstrip('/')}/internal/events",
            params=params,
            headers={HEADER: internal_token(self.keys, self.caller)},
        )
        if resp.status_code == 410:
            raise FeedGone(resp.json().get("message", "feed gone"))
        resp.raise_for_status()
        body = resp.json()
        return FeedPage(
            [Envelope.model_validate(e) for e in body["events"]],
            int(body["head"]),
            int(body.get("pruned_through", 0)),
        )

    async def heads(self, source: str) -> dict[int, int]:
        """Every partition's head seq at the source (0 for one with no event yet)."""
        resp = await self.http.get(
            f"{self.urls[source].rstrip('/')}/internal/events/heads",
            headers={HEADER: internal_token(self.keys, self.caller)},
        )
        resp.raise_for_status()
        return {int(p): int(seq) for p, seq in resp.json()["heads"].items()}

    async def close(self) -> None:
        await self.http.aclose()


@dataclass(frozen=True)
class Applied:
    handled: int
    cursor: int
    held: list[Envelope]  # envelopes beyond a hole, to be kept until the hole is filled


class Inbox:
    """Applies the envelopes of one source partition in seq order, each batch in one unit of work."""

    def __init__(self, db: Database, feed: FeedClient, service: str, subscriptions: list[Subscription]) -> None:
        self.db = db
        self.feed = feed
        self.service = service
        self.subscriptions = {s.source: s for s in subscriptions}
        self._failures: dict[tuple[str, int], int] = {}

    async def apply(
        self,
        source: str,
        envelopes: Iterable[Envelope],
        *,
        partition: int | None = None,
        via: str = "kafka",
        tolerate_through: int = 0,
    ) -> Applied:
        """Handle, in seq order, what follows this service's cursor for the source partition (without
        `partition`: each envelope's own, 0 for envelopes from before partitions).

        Handling stops at the first hole (an envelope whose `prev` is past the cursor); the envelopes from
        there are returned to be held. A hole whose missing events the source pruned (prev at most
        `tolerate_through`) is no hole: the snapshot a rebuild reads has only each aggregate's newest event.
        """
        if partition is not None:
            return await self._apply_partition(source, partition, envelopes, via, tolerate_through)
        groups: dict[int, list[Envelope]] = {}
        for env in envelopes:
            groups.setdefault(env.partition or 0, []).append(env)
        handled, cursor, held = 0, 0, []
        for part, group in sorted(groups.items()):
            result = await self._apply_partition(source, part, group, via, tolerate_through)
            handled += result.handled
            cursor = max(cursor, result.cursor)
            held.extend(result.held)
        return Applied(handled, cursor, held)

    async def _apply_partition(
        self, source: str, partition: int, envelopes: Iterable[Envelope], via: str, tolerate_through: int
    ) -> Applied:
        todo: list[Envelope] = []
        held: list[Envelope] = []
        ordered = sorted(envelopes, key=lambda e: e.seq)
        try:
            async with self.db.unit_of_work() as uow:
                cursor = await self._lock_cursor(uow, source, partition)
                todo, held = _next_in_order(ordered, cursor, tolerate_through)
                if todo:
                    blocked = await quarantine.held_subjects(uow, source, partition)
                    for env in todo:
                        if env.subject in blocked:
                            await self._wait_behind(uow, source, env, blocked[env.subject])
                        else:
                            await self._handle(uow, self.subscriptions[source], env)
                    await self._advance(uow, source, partition, todo[-1].seq, len(todo))
        except Exception as exc:
            if not todo:
                raise
            # Something in the batch failed: handle it again one event per transaction, so the one that
            # fails is the only one set aside.
            log.info("a batch from %s partition %d failed (%s); handling it event by event", source, partition, exc)
            return await self._apply_one_by_one(source, partition, todo, held, via=via)
        if todo:
            EVENTS_HANDLED.labels(self.service, source, via).inc(len(todo))
            return Applied(len(todo), todo[-1].seq, held)
        return Applied(0, cursor, held)

    async def _apply_one_by_one(
        self, source: str, partition: int, todo: list[Envelope], held: list[Envelope], *, via: str
    ) -> Applied:
        handled = 0
        cursor = 0
        for env in todo:
            try:
                async with self.db.unit_of_work() as uow:
                    cursor = await self._lock_cursor(uow, source, partition)
                    if env.seq <= cursor:
                        continue  # another replica got there first
                    blocked = await quarantine.held_subjects(uow, source, partition)
                    if env.subject in blocked:
                        await self._wait_behind(uow, source, env, blocked[env.subject])
                    else:
                        await self._handle(uow, self.subscriptions[source], env)
                    await self._advance(uow, source, partition, env.seq, 1)
                handled += 1
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:2000]
                tries = self._failures.get((source, env.seq), 0) + 1
                if tries < QUARANTINE_AFTER_FAILURES:
                    # Perhaps only early (an event of another aggregate it depends on is still on its way):
                    # the partition waits and tries again with the next batch or tick.
                    self._failures[(source, env.seq)] = tries
                    log.warning("%s seq %d failed (%s), try %d; trying again", source, env.seq, error, tries)
                    if handled:
                        EVENTS_HANDLED.labels(self.service, source, via).inc(handled)
                    return Applied(handled, cursor, [e for e in todo if e.seq >= env.seq] + held)
                self._failures.pop((source, env.seq), None)
                async with self.db.unit_of_work() as uow:
                    cursor = await self._lock_cursor(uow, source, partition)
                    if env.seq <= cursor:
                        continue
                    await quarantine.set_aside(uow, source, env, error=error)
                    await self._advance(uow, source, partition, env.seq, 0)
                QUARANTINED.labels(self.service, source).inc()
                log.error(
                    "quarantined %s seq %d (%s, subject %s) from %s: %s; its aggregate's later events wait behind it",
                    env.id,
                    env.seq,
                    env.type,
                    env.subject,
                    source,
                    error,
                )
            cursor = env.seq
        if handled:
            EVENTS_HANDLED.labels(self.service, source, via).inc(handled)
        return Applied(handled, cursor, held)

    async def _wait_behind(self, uow: UnitOfWork, source: str, env: Envelope, first: int) -> None:
        await quarantine.set_aside(uow, source, env, error=f"waiting behind quarantined seq {first}", blocked_by=first)
        QUARANTINED.labels(self.service, source).inc()

    async def cursor(self, source: str, partition: int) -> int:
        async with self.db.engine.connect() as conn:
            value = (
                await conn.execute(
                    text(
                        "SELECT coalesce((SELECT last_seq FROM inbox WHERE source = :s AND partition = :p), "
                        "(SELECT last_seq FROM inbox WHERE source = :s AND partition = -1), 0)"
                    ),
                    {"s": source, "p": partition},
                )
            ).scalar_one()
        return int(value)

    async def _lock_cursor(self, uow: UnitOfWork, source: str, partition: int) -> int:
        select = text("SELECT last_seq FROM inbox WHERE source = :s AND partition = :p FOR UPDATE")
        params = {"s": source, "p": partition}
        value = (await uow.execute(select, params)).scalar_one_or_none()
        if value is None:
            # A schema from before partitions had one cursor per source: each partition starts from it.
            await uow.execute(
                text(
                    "INSERT INTO inbox (source, partition, last_seq) SELECT :s, :p, "
                    "coalesce((SELECT last_seq FROM inbox WHERE source = :s AND partition = -1), 0) "
                    "ON CONFLICT (source, partition) DO NOTHING"
                ),
                params,
            )
            value = (await uow.execute(select, params)).scalar_one()
        return int(value)

    async def _advance(self, uow: UnitOfWork, source: str, partition: int, seq: int, handled: int) -> None:
        await uow.execute(
            text(
                "UPDATE inbox SET last_seq = :seq, handled = handled + :n, updated_at = now(), handled_by = :by "
                "WHERE source = :source AND partition = :p"
            ),
            {"seq": seq, "n": handled, "source": source, "p": partition, "by": replica_name()},
        )

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

    # The platform office's hand on the quarantine (the admin routes call these).

    async def retry(self, source: str, seq: int, *, by: str) -> dict[str, Any]:
        """Handle a quarantined event now, then the events of its aggregate that waited behind it, each in its
        own transaction, stopping at the first that fails again."""
        results: list[dict[str, Any]] = []
        next_seq: int | None = seq
        while next_seq is not None:
            outcome = await self._retry_one(source, next_seq, by=by, first=not results)
            results.append(outcome)
            if outcome["status"] != "retried":
                break
            next_seq = outcome.pop("next", None)
        await self.refresh_held()
        return {"source": source, "seq": seq, "status": results[0]["status"], "events": results}

    async def _retry_one(self, source: str, seq: int, *, by: str, first: bool) -> dict[str, Any]:
        sub = self._subscription(source)
        try:
            async with self.db.unit_of_work() as uow:
                entry, env = await self._held_entry(uow, source, seq, first=first)
                await self._handle(uow, sub, env)
                await quarantine.resolve(uow, entry, status="retried", by=by)
                follower = await self._follower(uow, source, entry)
        except AppError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            async with self.db.unit_of_work() as uow:
                await quarantine.record_failed_retry(uow, source, seq, error)
            log.warning("retry of quarantined %s seq %d failed again: %s", source, seq, error)
            return {"seq": seq, "status": "held", "error": error}
        EVENTS_HANDLED.labels(self.service, source, "retry").inc()
        log.info("quarantined %s seq %d handled on retry by %s", source, seq, by)
        return {"seq": seq, "status": "retried", "next": follower}

    async def skip(self, source: str, seq: int, *, by: str) -> dict[str, Any]:
        self._subscription(source)
        async with self.db.unit_of_work() as uow:
            entry, _env = await self._held_entry(uow, source, seq, first=True)
            await quarantine.resolve(uow, entry, status="skipped", by=by)
        log.warning("quarantined %s seq %d (%s) skipped by %s", source, seq, entry.type, by)
        await self.refresh_held()
        return {"source": source, "seq": seq, "status": "skipped"}

    async def cursors(self) -> list[dict[str, Any]]:
        """Per source partition: the last seq handled, how many events, when, and by which replica."""
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT source, partition, last_seq, handled, handled_by, updated_at FROM inbox "
                    "ORDER BY source, partition"
                )
            )
            return [dict(r) for r in rows.mappings()]

    async def list_quarantined(self, *, status: str | None, limit: int) -> list[quarantine.QuarantinedEvent]:
        async with self.db.unit_of_work() as uow:
            return await quarantine.list_quarantined(uow, status=status, limit=limit)

    async def refresh_held(self) -> None:
        async with self.db.unit_of_work() as uow:
            counts = await quarantine.held_counts(uow)
        for source in self.subscriptions:
            QUARANTINE_HELD.labels(self.service, source).set(counts.get(source, 0))

    def _subscription(self, source: str) -> Subscription:
        sub = self.subscriptions.get(source)
        if sub is None:
            raise NotFound(f"本服务不消费来源 {source} 的事件。", f"This service does not consume events of {source}.")
        return sub

    async def _held_entry(
        self, uow: UnitOfWork, source: str, seq: int, *, first: bool
    ) -> tuple[quarantine.QuarantinedEvent, Envelope]:
        found = await quarantine.lock_entry(uow, source, seq)
        if found is None:
            raise NotFound(
                f"没有来源 {source} 序号 {seq} 的隔离事件。",
                f"No quarantined event of {source} with seq {seq}.",
                details={"source": source, "seq": seq},
            )
        entry, env = found
        if entry.status != "held":
            raise AppError(
                "该隔离事件已处理过（已重试或已跳过）。",
                f"This quarantined event is already {entry.status}.",
                code="quarantine_resolved",
                status=409,
                details={"source": source, "seq": seq, "status": entry.status},
            )
        earlier = await quarantine.earlier_held(uow, source, entry.subject, seq)
        if earlier is not None and first:
            raise AppError(
                f"同一对象更早的隔离事件（序号 {earlier}）须先处理。",
                f"An earlier quarantined event of the same aggregate (seq {earlier}) must be resolved first.",
                code="quarantine_order",
                status=409,
                details={"source": source, "seq": seq, "first_held": earlier},
            )
        return entry, env

    async def _follower(self, uow: UnitOfWork, source: str, entry: quarantine.QuarantinedEvent) -> int | None:
        value = (
            await uow.execute(
                text(
                    "SELECT min(seq) FROM inbox_quarantine WHERE source = :s AND subject = :subject "
                    "AND status = 'held' AND seq > :seq AND blocked_by IS NOT NULL"
                ),
                {"s": source, "subject": entry.subject, "seq": entry.seq},
            )
        ).scalar()
        return int(value) if value is not None else None


def _next_in_order(
    ordered: list[Envelope], cursor: int, tolerate_through: int
) -> tuple[list[Envelope], list[Envelope]]:
    """What can be handled now after `cursor` (gap-free by `prev`), and what waits behind a hole."""
    todo: list[Envelope] = []
    last = cursor
    for i, env in enumerate(ordered):
        if env.seq <= last:
            continue
        if env.prev is not None and env.prev > last and env.prev > tolerate_through:
            return todo, [e for e in ordered[i:] if e.seq > last]
        todo.append(env)
        last = env.seq
    return todo, []


@dataclass
class _PartitionState:
    held: dict[int, Envelope] = field(default_factory=dict)
    gap_since: float | None = None
    last_kafka: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    lag: int = 0
    # The inbox cursor as this replica last read or moved it in a catch-up: while the source's head is not
    # past it, a tick has nothing to fetch (Kafka's deliveries since only move the real cursor further on).
    seen: int | None = None


class ConsumerRunner:
    """The consumer-group loop: Kafka batches in, one transaction per source partition per batch, commit after;
    beside it the feeds, for partitions Kafka is silent about."""

    def __init__(
        self,
        inbox: Inbox,
        *,
        bootstrap: str,
        group_id: str,
        topics: dict[str, str],
        verifier: EnvelopeVerifier,
        partitions: int = 3,
        catchup_interval: float = 2.0,
        security: KafkaSecurity = PLAINTEXT,
        session_timeout_ms: int = 10000,
    ) -> None:
        self.inbox = inbox
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topic_to_source = {t: s for s, t in topics.items()}
        self.source_to_topic = dict(topics)
        self._source_uris = {s: source_uri(s) for s in topics}
        self.verifier = verifier
        self.partitions = partitions
        self.catchup_interval = catchup_interval
        self.security = security
        self.session_timeout_ms = session_timeout_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._failing: set[str] = set()
        self._state: dict[tuple[str, int], _PartitionState] = {}
        self._paused: set[TopicPartition] = set()

    def _partition(self, source: str, partition: int) -> _PartitionState:
        key = (source, partition)
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = _PartitionState()
        return state

    async def run(self) -> None:
        """Kafka and the feeds run side by side: the feeds keep events flowing while Kafka is sick."""
        await asyncio.gather(self._kafka_loop(), self._catch_up_loop())

    async def _catch_up_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):
                await self.inbox.refresh_held()
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
                self._set_assigned(consumer.assignment())
                now = time.monotonic()
                for tp, messages in batch.items():
                    source = self.topic_to_source.get(tp.topic)
                    if source is None:
                        continue
                    state = self._partition(source, tp.partition)
                    state.last_kafka = now
                    for msg in messages:
                        env = self._genuine(source, tp, msg)
                        if env is not None:
                            state.held[env.seq] = env
                for tp in batch:
                    source = self.topic_to_source.get(tp.topic)
                    if source is None:
                        continue
                    try:
                        await self._drain(source, tp.partition)
                    except Exception as exc:
                        # The database or the source's feed is away: what is held stays held and is tried
                        # again with the next batch or tick; the broker connection has nothing to do with it.
                        log.warning("%s partition %d: %s; will try again", source, tp.partition, exc)
                self._measure_lag(consumer, batch)
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

    def _genuine(self, source: str, tp: TopicPartition, msg: Any) -> Envelope | None:
        """The envelope of a message its source really published, or None (refused, counted and logged)."""
        tag = next((v for k, v in (msg.headers or ()) if k == SIGNATURE_HEADER), None)
        reason = None
        env = None
        if not self.verifier.is_genuine(source, msg.value, tag):
            reason = "signature"
        else:
            try:
                env = Envelope.model_validate_json(msg.value)
            except ValidationError:
                reason = "malformed"
            else:
                if env.source != self._source_uris[source]:
                    reason = "source"
                elif env.partition is not None and env.partition != tp.partition:
                    reason = "partition"
        if reason is None:
            return env
        EVENTS_REFUSED.labels(self.inbox.service, source, reason).inc()
        log.warning(
            "refused a message on %s partition %d offset %d: %s check failed (not applied)",
            tp.topic,
            tp.partition,
            msg.offset,
            reason,
        )
        return None

    async def _drain(self, source: str, partition: int) -> None:
        """Apply what is held for a partition; past the patience, fill a hole from the feed."""
        state = self._partition(source, partition)
        async with state.lock:
            if not state.held:
                return
            result = await self.inbox.apply(source, state.held.values(), partition=partition)
            self._keep_held(source, partition, state, result.held)
            if not state.held:
                return
            if state.gap_since is None:
                state.gap_since = time.monotonic()
            if time.monotonic() - state.gap_since < GAP_PATIENCE_SECONDS:
                return
            until = min(e.prev or 0 for e in state.held.values())
            await self._fill(source, partition, result.cursor, until)
            result = await self.inbox.apply(source, state.held.values(), partition=partition)
            self._keep_held(source, partition, state, result.held)

    def _keep_held(self, source: str, partition: int, state: _PartitionState, held: list[Envelope]) -> None:
        state.held = {e.seq: e for e in held}
        if not held:
            state.gap_since = None
        consumer = self._consumer
        if consumer is None:
            return
        tp = TopicPartition(self.source_to_topic[source], partition)
        if len(held) > MAX_HELD and tp not in self._paused:
            consumer.pause(tp)
            self._paused.add(tp)
        elif len(held) <= MAX_HELD and tp in self._paused:
            consumer.resume(tp)
            self._paused.discard(tp)

    async def _fill(self, source: str, partition: int, cursor: int, until: int) -> None:
        """Read the hole (cursor, until] of a partition from the source's feed, chunk by chunk, each chunk
        handled in its own transaction; no transaction is open while the feed is read."""
        GAP_FILLS.labels(self.inbox.service, source).inc()
        while cursor < until:
            try:
                page = await self.inbox.feed.fetch(source, after=cursor, partition=partition)
            except FeedGone:
                await self._rebuild(source, partition)
                return
            events = [e for e in page.events if e.seq <= until]
            if not events:
                raise FeedGone(f"{source} feed does not have the events of partition {partition} after {cursor}")
            result = await self.inbox.apply(source, events, partition=partition, via="gap_fill")
            GAPS_FILLED.labels(self.inbox.service, source).inc(result.handled)
            if result.cursor <= cursor:
                raise FeedGone(f"{source} feed did not move partition {partition} past {cursor}")
            cursor = result.cursor

    async def _catch_up_all(self) -> None:
        now = time.monotonic()
        heads: dict[str, dict[int, int] | None] = {}
        for source, partition in self._my_partitions():
            state = self._partition(source, partition)
            try:
                if state.held and state.gap_since is not None:
                    await self._drain(source, partition)
                # While Kafka delivers a partition's events, the feed has nothing to add.
                if now - state.last_kafka < self.catchup_interval:
                    continue
                # One call a source a tick says where there is anything to read at all: an idle platform's
                # feeds are otherwise asked for every partition of every source, every tick.
                if source not in heads:
                    heads[source] = await self._heads(source)
                known = heads[source]
                if known is not None and state.seen is not None and known.get(partition, 0) <= state.seen:
                    state.lag = 0
                    continue
                async with state.lock:
                    await self._catch_up(source, partition, state)
                self._failing.discard(source)
            except Exception as exc:
                # Once per outage, not every tick: a source that is down for an hour is one warning.
                level = logging.DEBUG if source in self._failing else logging.WARNING
                log.log(level, "catch-up from %s partition %d failed: %s", source, partition, exc)
                self._failing.add(source)
        self._set_lag_gauges()

    async def _heads(self, source: str) -> dict[int, int] | None:
        """The source's partition heads, or None (read each partition's feed then) when it cannot say."""
        try:
            return await self.inbox.feed.heads(source)
        except Exception:
            return None

    async def catch_up(self, source: str) -> int:
        """Read every partition of the source's feed until this service has handled all it has sequenced."""
        total = 0
        for partition in range(self.partitions):
            state = self._partition(source, partition)
            async with state.lock:
                total += await self._catch_up(source, partition, state)
        return total

    async def _catch_up(self, source: str, partition: int, state: _PartitionState) -> int:
        total = 0
        cursor = await self.inbox.cursor(source, partition)
        state.seen = cursor
        started = time.monotonic()
        while True:
            try:
                page = await self.inbox.feed.fetch(source, after=cursor, partition=partition)
            except FeedGone:
                state.seen = None
                return total + await self._rebuild(source, partition)
            CATCH_UP_READS.labels(self.inbox.service, source).inc()
            state.lag = max(0, page.head - cursor)
            if not page.events:
                return total
            result = await self.inbox.apply(source, page.events, partition=partition, via="feed")
            state.seen = result.cursor
            total += result.handled
            if result.cursor <= cursor or page.events[-1].seq >= page.head:
                state.lag = max(0, page.head - result.cursor)
                return total
            cursor = result.cursor
            if state.last_kafka > started:
                return total  # Kafka has this partition again: it is the road

    async def _rebuild(self, source: str, partition: int) -> int:
        """Behind the source's retention: rebuild from what it kept (each aggregate's newest event), then
        carry on from its head. The events that later ones superseded are gone, and the log says so."""
        cursor = await self.inbox.cursor(source, partition)
        started_at = cursor
        total = 0
        while True:
            page = await self.inbox.feed.fetch(source, after=cursor, partition=partition, snapshot=True)
            if not page.events:
                break
            result = await self.inbox.apply(
                source, page.events, partition=partition, via="snapshot", tolerate_through=page.pruned_through
            )
            total += result.handled
            if result.cursor <= cursor:
                break
            cursor = result.cursor
        SNAPSHOT_REBUILDS.labels(self.inbox.service, source).inc()
        log.warning(
            "%s partition %d: this service was at seq %d, behind the source's retention; rebuilt from its "
            "kept snapshot up to seq %d (%d events); superseded events before the prune are not replayed",
            source,
            partition,
            started_at,
            cursor,
            total,
        )
        return total

    def _my_partitions(self) -> list[tuple[str, int]]:
        """The partitions this replica answers for: Kafka's assignment, or every one while Kafka is away."""
        consumer = self._consumer
        if consumer is not None:
            assigned = consumer.assignment()
            if assigned:
                return sorted(
                    (self.topic_to_source[tp.topic], tp.partition)
                    for tp in assigned
                    if tp.topic in self.topic_to_source
                )
        return [(s, p) for s in self.inbox.subscriptions for p in range(self.partitions)]

    def _set_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        per_source = dict.fromkeys(self.inbox.subscriptions, 0)
        for tp in assigned:
            source = self.topic_to_source.get(tp.topic)
            if source is not None:
                per_source[source] = per_source.get(source, 0) + 1
        for source, count in per_source.items():
            CONSUMER_ASSIGNED.labels(self.inbox.service, source).set(count)

    def _measure_lag(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[Any]]) -> None:
        for tp, messages in batch.items():
            source = self.topic_to_source.get(tp.topic)
            highwater = consumer.highwater(tp)
            if source is None or highwater is None or not messages:
                continue
            self._partition(source, tp.partition).lag = max(0, highwater - messages[-1].offset - 1)
        self._set_lag_gauges()

    def _set_lag_gauges(self) -> None:
        per_source: dict[str, int] = {s: 0 for s in self.inbox.subscriptions}
        for (source, _p), state in self._state.items():
            per_source[source] = per_source.get(source, 0) + state.lag
        for source, lag in per_source.items():
            CONSUMER_LAG.labels(self.inbox.service, source).set(lag)

    async def _ensure_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            topics = list(self.topic_to_source)
            await ensure_topics(self.bootstrap, topics, self.partitions, self.security)
            consumer = AIOKafkaConsumer(
                *topics,
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                metadata_max_age_ms=5000,
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=min(2000, self.session_timeout_ms // 3),
                **self.security.client_options(),
            )
            try:
                await consumer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)
                raise
            self._consumer = consumer
            self._paused.clear()
        return self._consumer

    async def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._set_assigned(())
        if consumer is not None:
            try:
                await asyncio.wait_for(consumer.stop(), 5)
            except Exception as exc:
                log.debug("consumer stop failed: %s", exc)

    async def stop(self) -> None:
        self._stopping.set()
        await self._drop_consumer()
