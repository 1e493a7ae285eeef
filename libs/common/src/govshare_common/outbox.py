"""Transactional outbox: rows written with the state change, sequenced and published by the relay.

Sequencing happens in the relay, not the writer: writers only append (no hot counter row), and the relay —
one per service, chosen by a PostgreSQL advisory lock — gives committed rows the next numbers of a gap-free
`seq`, commits that, and only then publishes. A number once given is never given to another event, so the
feed (GET /internal/events) and Kafka always agree on what seq N is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from govshare_common.kafka import EventProducer
from govshare_common.metrics import OUTBOX_LAG, RELAY_PUBLISHED

log = logging.getLogger("govshare.outbox")

PLATFORM_TABLES_DDL = [
    """
    CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        seq bigint UNIQUE,
        type text NOT NULL,
        subject text NOT NULL,
        time timestamptz NOT NULL,
        traceparent text,
        data jsonb NOT NULL,
        published_at timestamptz
    )
    """,
    "CREATE INDEX outbox_unsequenced ON outbox (id) WHERE seq IS NULL",
    "CREATE INDEX outbox_unpublished ON outbox (seq) WHERE seq IS NOT NULL AND published_at IS NULL",
    """
    CREATE TABLE outbox_head (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        last_seq bigint NOT NULL
    )
    """,
    "INSERT INTO outbox_head (only_row, last_seq) VALUES (true, 0)",
    """
    CREATE TABLE inbox (
        source text PRIMARY KEY,
        last_seq bigint NOT NULL,
        last_event_id uuid,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]


def notify_channel(schema: str) -> str:
    return f"govshare_outbox_{schema}"[:63]


def lock_key(name: str) -> int:
    """A stable 32-bit key for pg advisory locks (hashtext is not guaranteed stable across versions)."""
    return zlib.crc32(name.encode()) - 2**31


_INSERT_MANY = text(
    "INSERT INTO outbox (event_id, type, subject, time, traceparent, data) "
    "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:subjects AS text[]), "
    "CAST(:times AS timestamptz[]), CAST(:traceparents AS text[]), CAST(:datas AS jsonb[]))"
)


async def write_outbox(conn: AsyncConnection, schema: str, events: list[dict[str, Any]]) -> None:
    # One statement with array parameters: a round trip per transaction, not per event.
    await conn.execute(
        _INSERT_MANY,
        {
            "ids": [e["event_id"] for e in events],
            "types": [e["type"] for e in events],
            "subjects": [e["subject"] for e in events],
            "times": [e["time"] for e in events],
            "traceparents": [e["traceparent"] for e in events],
            "datas": [json.dumps(e["data"], ensure_ascii=False, separators=(",", ":")) for e in events],
        },
    )
    await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": notify_channel(schema)})


def envelope_dict(row: Any, source: str) -> dict[str, Any]:
    """One outbox row as a CloudEvents envelope (the Envelope model's JSON form), for the feed and for Kafka."""
    return {
        "specversion": "1.0",
        "id": str(row.event_id),
        "source": source,
        "type": row.type,
        "time": row.time.isoformat(),
        "subject": row.subject,
        "seq": row.seq,
        "traceparent": row.traceparent,
        "datacontenttype": "application/json",
        "data": row.data,
    }


async def read_feed(conn: AsyncConnection, *, source: str, after: int, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT event_id, seq, type, subject, time, traceparent, data FROM outbox "
            "WHERE seq > :after ORDER BY seq LIMIT :limit"
        ),
        {"after": after, "limit": limit},
    )
    return [envelope_dict(r, source) for r in rows]


async def feed_bounds(conn: AsyncConnection) -> tuple[int, int]:
    """(head, oldest): the last seq given out, and the oldest seq still kept."""
    head = (await conn.execute(text("SELECT last_seq FROM outbox_head"))).scalar_one()
    oldest = (await conn.execute(text("SELECT min(seq) FROM outbox WHERE seq IS NOT NULL"))).scalar_one()
    return int(head), int(oldest if oldest is not None else head + 1)


class OutboxRelay:
    """Publishes one service's outbox to its Kafka topic, in seq order, at least once."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        dsn: str,
        schema: str,
        source: str,
        topic: str,
        producer: EventProducer,
        batch_size: int = 2000,
        poll_interval: float = 1.0,
    ) -> None:
        self.engine = engine
        self.dsn = dsn
        self.schema = schema
        self.source = source
        self.topic = topic
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self.is_leader = False

    async def run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database gone, lock lost: retry, the outbox keeps everything
                self.is_leader = False
                log.warning("outbox relay for %s stopped (%s); retrying", self.schema, exc)
                await asyncio.sleep(2.0)

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn, server_settings={"search_path": self.schema})
        try:
            key = lock_key(f"relay:{self.schema}")
            # Another replica may hold the lock and relay; poll it so this one takes over if that one dies.
            while True:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    break
                await asyncio.sleep(5.0)
            self.is_leader = True
            await conn.add_listener(notify_channel(self.schema), lambda *_: self._wakeup.set())
            while True:
                self._wakeup.clear()
                moved = await self.relay_once()
                if moved < self.batch_size:
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
                    except TimeoutError:
                        pass
        finally:
            self.is_leader = False
            # A graceful close waits for the server; one stuck behind a cancelled query must not hold up shutdown.
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except TimeoutError:
                conn.terminate()
            except asyncio.CancelledError:
                conn.terminate()
                raise

    async def relay_once(self) -> int:
        """Sequence newly committed rows, then publish everything sequenced but unpublished."""
        await self._assign_seqs()
        return await self._publish_pending()

    async def _assign_seqs(self) -> int:
        async with self.engine.begin() as conn:
            head = (await conn.execute(text("SELECT last_seq FROM outbox_head FOR UPDATE"))).scalar_one()
            result = await conn.execute(
                text(
                    "WITH todo AS (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM outbox "
                    "WHERE seq IS NULL ORDER BY id LIMIT :n) "
                    "UPDATE outbox o SET seq = :head + todo.rn FROM todo WHERE o.id = todo.id"
                ),
                {"n": self.batch_size, "head": head},
            )
            count = result.rowcount or 0
            if count:
                await conn.execute(text("UPDATE outbox_head SET last_seq = last_seq + :n"), {"n": count})
            return count

    async def _publish_pending(self) -> int:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT event_id, seq, type, subject, time, traceparent, data FROM outbox "
                        "WHERE seq IS NOT NULL AND published_at IS NULL ORDER BY seq LIMIT :n"
                    ),
                    {"n": self.batch_size},
                )
            ).all()
        if not rows:
            OUTBOX_LAG.labels(self.schema).set(0)
            return 0
        await self.producer.publish(self.topic, [kafka_message(r, self.source) for r in rows])
        async with self.engine.begin() as conn:
            await conn.execute(
                text("UPDATE outbox SET published_at = now() WHERE seq BETWEEN :a AND :b AND published_at IS NULL"),
                {"a": rows[0].seq, "b": rows[-1].seq},
            )
        RELAY_PUBLISHED.labels(self.schema).inc(len(rows))
        return len(rows)


async def prune_outbox(conn: AsyncConnection, *, now: datetime, retention_days: int) -> int:
    """Drop published rows past the retention window; the feed then answers 410 for older positions."""
    result = await conn.execute(
        text("DELETE FROM outbox WHERE published_at IS NOT NULL AND time < :cutoff"),
        {"cutoff": now - timedelta(days=retention_days)},
    )
    return result.rowcount or 0


Message = tuple[bytes, bytes, list[tuple[str, bytes]]]


def kafka_message(row: Any, source: str) -> Message:
    """(key, value, headers) for one outbox row, built without a model per row (the relay's hot path)."""
    envelope = envelope_dict(row, source)
    headers = [("ce_type", row.type.encode()), ("ce_id", envelope["id"].encode())]
    if row.traceparent:
        headers.append(("traceparent", row.traceparent.encode()))
    return row.subject.encode(), json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode(), headers
