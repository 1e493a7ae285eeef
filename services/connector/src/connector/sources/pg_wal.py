"""PostgreSQL capture from the write-ahead log: a logical replication slot with the built-in pgoutput plugin.

Each poll peeks the slot's changes up to the server's flushed position, writes them to the spool with their
source positions (commit LSN, index in the transaction) and only then advances the slot: a crash in between
re-reads changes the spool already holds, and the spool's cursor skips them. Every poll advances the slot to
the flushed position even when no captured table changed (the heartbeat), so WAL written for other tables is
not retained. The WAL the slot still holds is measured on every poll, reported, and warned about above
`wal_warn_mb`; the server's `max_slot_wal_keep_size` is the hard bound (README: set it), beyond which
PostgreSQL invalidates the slot and the connector reports the source as lost rather than silently resuming.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from connector.config import SourceSection
from connector.domain import mapping
from connector.domain.pgoutput import Decoder, Transaction, parse_lsn
from connector.domain.snapshot_horizon import SnapshotHorizon
from connector.sources.base import Source, split_table
from connector.state import Change, State

log = logging.getLogger("govshare.connector.pg_wal")

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PEEK_LIMIT = 20_000
SPOOL_CHUNK = 5_000


class SourceLost(RuntimeError):
    pass


def position(lsn: int, index: int) -> str:
    return f"{lsn:016X}.{index:06d}"


class WalSource(Source):
    def __init__(self, cfg: SourceSection, state: State) -> None:
        super().__init__()
        self.cfg = cfg
        self.state = state
        self.conn: asyncpg.Connection | None = None
        self.schema, self.table = split_table(cfg.table)
        self.schema = self.schema or "public"
        self.decoder = Decoder()
        self.warned = False

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.table}"'

    async def _connect(self) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.cfg.database_url)
        return self.conn

    async def prepare(self) -> list[str]:
        conn = await self._connect()
        level = await conn.fetchval("SHOW wal_level")
        if level != "logical":
            raise SourceLost(
                f"sources {self.cfg.name}: the department database runs with wal_level={level}; "
                "set wal_level = logical in its postgresql.conf and restart it"
            )
        columns = [
            r["attname"]
            for r in await conn.fetch(
                "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 "
                "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                self.schema,
                self.table,
            )
        ]
        if not columns:
            return []
        pub, slot = self.cfg.publication_name, self.cfg.slot_name
        if not await conn.fetchval("SELECT 1 FROM pg_publication WHERE pubname = $1", pub):
            await conn.execute(f'CREATE PUBLICATION "{pub}" FOR TABLE {self.qualified}')
        if not await conn.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", slot):
            await conn.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot)
            log.info("source %s: created replication slot %s", self.cfg.name, slot)
        return columns

    async def _snapshot(self, conn: asyncpg.Connection) -> int:
        """The rows already in the table when capture began, sent once before the first logged change."""
        start = await conn.fetchval(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", self.cfg.slot_name
        )
        base = parse_lsn(start)
        cols = ", ".join(f'"{c}"::text AS "{c}"' for c in self.cfg.mapping)
        keys = ", ".join(f'"{c}"' for c in self.cfg.key)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            horizon = SnapshotHorizon.parse(await conn.fetchval("SELECT txid_current_snapshot()::text"))
            rows = await conn.fetch(f"SELECT {cols} FROM {self.qualified} ORDER BY {keys}")
        done = {"snapshot_done": True, "snapshot": str(horizon)}
        changes = [
            Change(
                f"{base:016X}.s{n:09d}",
                "upsert",
                mapping.record_key(dict(r), self.cfg.key),
                mapping.to_items(dict(r), self.cfg.mapping),
            )
            for n, r in enumerate(rows)
        ]
        for i in range(0, max(len(changes), 1), 10_000):
            last = i + 10_000 >= len(changes)
            await self.state.spool(self.cfg.name, changes[i : i + 10_000], cursor=done if last else None)
        return len(changes)

    def _changes(self, tx: Transaction) -> list[Change]:
        out: list[Change] = []
        when = PG_EPOCH + timedelta(microseconds=tx.commit_time_us)
        index = 0
        for ch in tx.changes:
            old_key = mapping.record_key(ch.old, self.cfg.key) if ch.old else None
            if ch.op == "delete":
                assert ch.old is not None
                out.append(
                    Change(position(tx.commit_lsn, index), "delete", old_key or "", self._key_items(ch.old), when)
                )
                index += 1
                continue
            assert ch.new is not None
            key = mapping.record_key(ch.new, self.cfg.key)
            if ch.op == "update" and old_key is not None and old_key != key and ch.old is not None:
                out.append(Change(position(tx.commit_lsn, index), "delete", old_key, self._key_items(ch.old), when))
                index += 1
            out.append(
                Change(position(tx.commit_lsn, index), "upsert", key, mapping.to_items(ch.new, self.cfg.mapping), when)
            )
            index += 1
        return out

    def _key_items(self, row: dict[str, Any]) -> dict[str, Any]:
        return mapping.to_items({c: row.get(c) for c in self.cfg.key}, {c: self.cfg.mapping[c] for c in self.cfg.key})

    async def poll(self) -> int:
        conn = await self._connect()
        _, cursor = await self.state.captured_position(self.cfg.name)
        if self.cfg.snapshot and not (cursor or {}).get("snapshot_done"):
            n = await self._snapshot(conn)
            log.info("source %s: sent the %d rows already in %s", self.cfg.name, n, self.cfg.table)
            return n
        seen = (cursor or {}).get("snapshot")
        horizon = SnapshotHorizon.parse(seen) if seen else None
        done = {"snapshot_done": True, **({"snapshot": seen} if seen else {})}
        upto = await conn.fetchval("SELECT pg_current_wal_flush_lsn()::text")
        rows = await conn.fetch(
            "SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, $3, "
            "'proto_version', '1', 'publication_names', $4)",
            self.cfg.slot_name,
            upto,
            PEEK_LIMIT,
            self.cfg.publication_name,
        )
        self.decoder = Decoder()  # each peek is a new decoding session: Relation messages come again
        changes: list[Change] = []
        last_commit: int | None = None
        spooled = 0
        for r in rows:
            tx = self.decoder.feed(bytes(r["data"]))
            if tx is not None:
                if horizon is None or not horizon.saw(tx.xid):
                    changes.extend(self._changes(tx))
                last_commit = tx.commit_lsn
                if len(changes) >= SPOOL_CHUNK:
                    # A large backlog goes into the spool in parts, so pushing starts while the rest is decoded.
                    spooled += await self.state.spool(self.cfg.name, changes, cursor=done)
                    changes = []
                    self.spooled.set()
        if changes:
            spooled += await self.state.spool(self.cfg.name, changes, cursor=done)
        # Everything before `upto` is in the spool now (or was never ours): the slot may let it go.
        target = parse_lsn(upto) if len(rows) < PEEK_LIMIT else last_commit
        if target is not None:
            confirmed = await conn.fetchval(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", self.cfg.slot_name
            )
            if confirmed is None:
                raise SourceLost(f"source {self.cfg.name}: the replication slot {self.cfg.slot_name} is gone")
            if target > parse_lsn(confirmed):
                await conn.execute(
                    "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)", self.cfg.slot_name, _lsn(target)
                )
        await self._watch_wal(conn)
        return spooled

    async def _watch_wal(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained, wal_status "
            "FROM pg_replication_slots WHERE slot_name = $1",
            self.cfg.slot_name,
        )
        if row is None:
            raise SourceLost(f"source {self.cfg.name}: the replication slot {self.cfg.slot_name} is gone")
        await self.state.note_wal(self.cfg.name, row["retained"], row["wal_status"])
        if row["wal_status"] == "lost":
            raise SourceLost(
                f"source {self.cfg.name}: PostgreSQL invalidated the slot {self.cfg.slot_name} "
                "(max_slot_wal_keep_size reached while the connector was away); drop the slot and clear the "
                "source's state to send the table afresh"
            )
        over = (row["retained"] or 0) > self.cfg.wal_warn_mb * 1024 * 1024
        if over and not self.warned:
            log.warning(
                "source %s: slot %s retains %.0f MB of WAL (warning at %.0f MB)",
                self.cfg.name,
                self.cfg.slot_name,
                (row["retained"] or 0) / 1048576,
                self.cfg.wal_warn_mb,
            )
        self.warned = over

    async def wal_settings(self) -> dict[str, Any]:
        conn = await self._connect()
        return {"max_slot_wal_keep_size": await conn.fetchval("SHOW max_slot_wal_keep_size")}

    async def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            await self.conn.close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "slot": self.cfg.slot_name, "publication": self.cfg.publication_name}


def _lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
