"""The connector's own record, in its own PostgreSQL (schema govshare_connector): the spool of captured changes
waiting to be pushed, each source's capture cursor, the batch in flight, dead letters, and the keyed hashes
of what was sent (for reconciliation).

Capture writes the spool and advances the source's cursor in one transaction, so a change is spooled once
whatever happens between; a pushed batch's rows leave the spool in the transaction that records it as done,
so the spool holds only what the platform has not yet acknowledged and never grows without bound.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from connector.domain.batching import Spooled

SCHEMA = "govshare_connector"

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
SET search_path = {SCHEMA};
CREATE TABLE IF NOT EXISTS spool (
    seq bigserial PRIMARY KEY,
    source text NOT NULL,
    position text NOT NULL,
    op text NOT NULL,
    record_key text NOT NULL,
    data jsonb NOT NULL,
    source_time timestamptz,
    captured_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, position)
);
CREATE INDEX IF NOT EXISTS spool_source_seq ON spool (source, seq);
CREATE TABLE IF NOT EXISTS source_state (
    source text PRIMARY KEY,
    captured_position text,
    cursor jsonb,
    captured_rows bigint NOT NULL DEFAULT 0,
    pushed_rows bigint NOT NULL DEFAULT 0,
    pushed_batches bigint NOT NULL DEFAULT 0,
    last_pushed_position text,
    last_pushed_source_time timestamptz,
    last_success_at timestamptz,
    last_error text,
    last_error_at timestamptz,
    wal_retained_bytes bigint,
    wal_status text
);
CREATE TABLE IF NOT EXISTS inflight (
    source text PRIMARY KEY,
    batch_id text NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    retries integer NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS dead_letter (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    position text NOT NULL,
    op text NOT NULL,
    record_key text NOT NULL,
    data jsonb NOT NULL,
    batch_id text NOT NULL,
    problems jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    resent_at timestamptz
);
CREATE TABLE IF NOT EXISTS sent_hash (
    source text NOT NULL,
    record_key text NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (source, record_key)
);
CREATE TABLE IF NOT EXISTS subscription_state (
    name text PRIMARY KEY,
    subscription_id text,
    resource text NOT NULL,
    cursor bigint NOT NULL DEFAULT 0,
    head bigint,
    last_success_at timestamptz,
    last_error text,
    last_error_at timestamptz
);
"""


@dataclass(frozen=True)
class Change:
    """A captured change on its way into the spool."""

    position: str
    op: str  # upsert | delete
    record_key: str
    data: dict[str, Any]
    source_time: datetime | None = None


@dataclass(frozen=True)
class Inflight:
    batch_id: str
    first_seq: int
    last_seq: int
    retries: int


def _spooled(r: Any) -> Spooled:
    data = r["data"]
    return Spooled(
        r["seq"], r["position"], r["op"], r["record_key"], json.loads(data) if isinstance(data, str) else data
    )


class State:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> State:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SELECT pg_advisory_lock(hashtext('govshare_connector_ddl'))")
            await conn.execute(DDL)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=6, server_settings={"search_path": SCHEMA})
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    # capture ---------------------------------------------------------------------------------------------

    async def captured_position(self, source: str) -> tuple[str | None, Any]:
        row = await self.pool.fetchrow("SELECT captured_position, cursor FROM source_state WHERE source = $1", source)
        if row is None:
            return None, None
        cursor = row["cursor"]
        return row["captured_position"], json.loads(cursor) if isinstance(cursor, str) else cursor

    async def spool(
        self,
        source: str,
        changes: Sequence[Change],
        *,
        position: str | None = None,
        cursor: Any = None,
        hashes: dict[str, str | None] | None = None,
        by_position: bool = True,
    ) -> int:
        """Append `changes` and move the source's cursor to `position` / `cursor`, all or nothing. Changes at or
        before the recorded position were spooled already (a re-read after a crash) and are skipped."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO source_state (source) VALUES ($1) ON CONFLICT (source) DO UPDATE SET source = excluded.source "
                "RETURNING captured_position",
                source,
            )
            done = row["captured_position"]
            fresh = [c for c in changes if not by_position or done is None or c.position > done]
            records = [
                (source, c.position, c.op, c.record_key, json.dumps(c.data, ensure_ascii=False), c.source_time)
                for c in fresh
            ]
            if fresh and by_position:
                # Positions past the cursor are new by construction: COPY, the fast way in for a backlog.
                await conn.copy_records_to_table(
                    "spool",
                    records=records,
                    columns=["source", "position", "op", "record_key", "data", "source_time"],
                    schema_name=SCHEMA,
                )
            elif fresh:
                await conn.executemany(
                    "INSERT INTO spool (source, position, op, record_key, data, source_time) "
                    "VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT (source, position) DO NOTHING",
                    records,
                )
            if hashes:
                gone = [k for k, h in hashes.items() if h is None]
                kept = [(source, k, h) for k, h in hashes.items() if h is not None]
                if gone:
                    await conn.execute(
                        "DELETE FROM sent_hash WHERE source = $1 AND record_key = ANY($2::text[])", source, gone
                    )
                if kept:
                    await conn.executemany(
                        "INSERT INTO sent_hash VALUES ($1, $2, $3) ON CONFLICT (source, record_key) "
                        "DO UPDATE SET hash = excluded.hash",
                        kept,
                    )
            new_position = position if position is not None else (fresh[-1].position if fresh else None)
            if by_position and new_position is not None and (done is None or new_position > done):
                done = new_position
            await conn.execute(
                "UPDATE source_state SET captured_position = $2, cursor = COALESCE($3::jsonb, cursor), "
                "captured_rows = captured_rows + $4 WHERE source = $1",
                source,
                done,
                json.dumps(cursor) if cursor is not None else None,
                len(fresh),
            )
            return len(fresh)

    async def sent_hashes(self, source: str) -> dict[str, str]:
        rows = await self.pool.fetch("SELECT record_key, hash FROM sent_hash WHERE source = $1", source)
        return {r["record_key"]: r["hash"] for r in rows}

    async def note_wal(self, source: str, retained: int | None, status: str | None) -> None:
        await self.pool.execute(
            "INSERT INTO source_state (source, wal_retained_bytes, wal_status) VALUES ($1, $2, $3) "
            "ON CONFLICT (source) DO UPDATE SET wal_retained_bytes = $2, wal_status = $3",
            source,
            retained,
            status,
        )

    async def note_error(self, source: str, error: str | None) -> None:
        await self.pool.execute(
            "INSERT INTO source_state (source, last_error, last_error_at) VALUES ($1, $2, now()) "
            "ON CONFLICT (source) DO UPDATE SET last_error = $2, last_error_at = CASE WHEN $2 IS NULL "
            "THEN source_state.last_error_at ELSE now() END",
            source,
            error,
        )

    # push ------------------------------------------------------------------------------------------------

    async def oldest(self, source: str, limit: int) -> tuple[list[Spooled], datetime | None]:
        rows = await self.pool.fetch(
            "SELECT seq, position, op, record_key, data::text AS data, captured_at FROM spool WHERE source = $1 "
            "ORDER BY seq LIMIT $2",
            source,
            limit,
        )
        return [_spooled(r) for r in rows], (rows[0]["captured_at"] if rows else None)

    async def inflight(self, source: str) -> Inflight | None:
        r = await self.pool.fetchrow("SELECT * FROM inflight WHERE source = $1", source)
        return Inflight(r["batch_id"], r["first_seq"], r["last_seq"], r["retries"]) if r else None

    async def begin(self, source: str, batch_id: str, first_seq: int, last_seq: int) -> Inflight:
        await self.pool.execute(
            "INSERT INTO inflight (source, batch_id, first_seq, last_seq) VALUES ($1, $2, $3, $4)",
            source,
            batch_id,
            first_seq,
            last_seq,
        )
        return Inflight(batch_id, first_seq, last_seq, 0)

    async def batch_rows(self, source: str, batch: Inflight) -> list[Spooled]:
        rows = await self.pool.fetch(
            "SELECT seq, position, op, record_key, data::text AS data FROM spool "
            "WHERE source = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
            source,
            batch.first_seq,
            batch.last_seq,
        )
        return [_spooled(r) for r in rows]

    async def retried(self, source: str) -> None:
        await self.pool.execute("UPDATE inflight SET retries = retries + 1 WHERE source = $1", source)

    async def done(self, source: str, batch: Inflight, rows: Sequence[Spooled]) -> None:
        """The platform holds the batch: its rows leave the spool, the next batch may start."""
        async with self.pool.acquire() as conn, conn.transaction():
            last = await conn.fetchrow(
                "SELECT position, source_time FROM spool WHERE source = $1 AND seq = "
                "(SELECT max(seq) FROM spool WHERE source = $1 AND seq BETWEEN $2 AND $3)",
                source,
                batch.first_seq,
                batch.last_seq,
            )
            await conn.execute(
                "DELETE FROM spool WHERE source = $1 AND seq BETWEEN $2 AND $3", source, batch.first_seq, batch.last_seq
            )
            await conn.execute("DELETE FROM inflight WHERE source = $1", source)
            await conn.execute(
                "UPDATE source_state SET pushed_rows = pushed_rows + $2, pushed_batches = pushed_batches + 1, "
                "last_pushed_position = COALESCE($3, last_pushed_position), "
                "last_pushed_source_time = COALESCE($4, last_pushed_source_time), last_success_at = now(), "
                "last_error = NULL WHERE source = $1",
                source,
                len(rows),
                last["position"] if last else None,
                last["source_time"] if last else None,
            )

    async def set_aside(
        self,
        source: str,
        batch: Inflight,
        refused: dict[int, list[dict[str, Any]]],
        rows: Sequence[Spooled],
        new_id: str,
    ) -> int:
        """Move the rows the platform refused to the dead letters; the rest of the batch goes on as `new_id`."""
        bad = [(rows[n - 1], problems) for n, problems in refused.items() if 1 <= n <= len(rows)]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO dead_letter (source, position, op, record_key, data, batch_id, problems) "
                "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb)",
                [
                    (
                        source,
                        r.position,
                        r.op,
                        r.record_key,
                        json.dumps(r.data, ensure_ascii=False),
                        batch.batch_id,
                        json.dumps(p, ensure_ascii=False),
                    )
                    for r, p in bad
                ],
            )
            await conn.execute(
                "DELETE FROM spool WHERE source = $1 AND seq = ANY($2::bigint[])", source, [r.seq for r, _ in bad]
            )
            await conn.execute("UPDATE inflight SET batch_id = $2 WHERE source = $1", source, new_id)
        return len(bad)

    # dead letters ----------------------------------------------------------------------------------------

    async def dead_letters(self, *, source: str | None = None, include_resent: bool = False) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, source, position, op, record_key, data::text AS data, batch_id, problems::text AS problems, "
            "created_at, resent_at FROM dead_letter WHERE ($1::text IS NULL OR source = $1) "
            "AND ($2 OR resent_at IS NULL) ORDER BY id",
            source,
            include_resent,
        )
        return [{**dict(r), "data": json.loads(r["data"]), "problems": json.loads(r["problems"])} for r in rows]

    async def resend(self, ids: Sequence[int], corrections: dict[str, Any] | None = None) -> int:
        """Put dead letters back at the end of their source's spool, with the operator's corrections applied."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, source, position, op, record_key, data::text AS data FROM dead_letter "
                "WHERE id = ANY($1::bigint[]) AND resent_at IS NULL FOR UPDATE",
                list(ids),
            )
            for r in rows:
                data = {**json.loads(r["data"]), **(corrections or {})}
                await conn.execute(
                    "INSERT INTO spool (source, position, op, record_key, data) VALUES ($1, $2, $3, $4, $5::jsonb)",
                    r["source"],
                    f"{r['position']}.resend{r['id']}",
                    r["op"],
                    r["record_key"],
                    json.dumps(data, ensure_ascii=False),
                )
            await conn.execute(
                "UPDATE dead_letter SET resent_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            return len(rows)

    # subscriptions ---------------------------------------------------------------------------------------

    async def subscription(self, name: str) -> dict[str, Any] | None:
        r = await self.pool.fetchrow("SELECT * FROM subscription_state WHERE name = $1", name)
        return dict(r) if r else None

    async def save_subscription(self, name: str, resource: str, subscription_id: str) -> None:
        await self.pool.execute(
            "INSERT INTO subscription_state (name, resource, subscription_id) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET subscription_id = $3, resource = $2",
            name,
            resource,
            subscription_id,
        )

    async def note_subscription(self, name: str, *, cursor: int | None, head: int | None, error: str | None) -> None:
        await self.pool.execute(
            "UPDATE subscription_state SET cursor = COALESCE($2, cursor), head = COALESCE($3, head), "
            "last_success_at = CASE WHEN $4::text IS NULL THEN now() ELSE last_success_at END, last_error = $4, "
            "last_error_at = CASE WHEN $4::text IS NULL THEN last_error_at ELSE now() END WHERE name = $1",
            name,
            cursor,
            head,
            error,
        )

    # status ----------------------------------------------------------------------------------------------

    async def source_status(self) -> dict[str, dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT s.*, (SELECT count(*) FROM spool p WHERE p.source = s.source) AS spool_depth, "
            "(SELECT min(captured_at) FROM spool p WHERE p.source = s.source) AS oldest_spooled_at, "
            "(SELECT count(*) FROM dead_letter d WHERE d.source = s.source AND d.resent_at IS NULL) AS dead_letters "
            "FROM source_state s"
        )
        return {r["source"]: dict(r) for r in rows}

    async def subscription_status(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: dict(r) for r in await self.pool.fetch("SELECT * FROM subscription_state")}
