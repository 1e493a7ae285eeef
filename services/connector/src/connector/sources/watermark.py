"""Capture from any database SQLAlchemy reaches (MySQL, Oracle, Dameng, Kingbase, openGauss … through their
drivers): rows whose watermark column grew since the last poll, plus a periodic keyed hash reconciliation.

The watermark (with the first key column as tie-break) moves in the same state transaction as the spooled rows.
A watermark cannot see deletes, nor a row whose transaction committed after a later watermark was read; the
reconciliation compares a hash of every row, by key, with the hashes of what was sent, and sends what differs
(upserts for missing or changed rows, deletes for rows gone). Database work runs in a worker thread, since most
of these drivers are synchronous.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from connector.config import SourceSection
from connector.domain import mapping
from connector.sources.base import Source
from connector.sources.sql import column, engine, quoted, table_columns
from connector.state import Change, State

PAGE = 5000


def _dump(value: Any) -> dict[str, Any]:
    if isinstance(value, datetime):
        return {"t": "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {"t": "date", "v": value.isoformat()}
    return {"t": "plain", "v": value}


def _load(raw: dict[str, Any]) -> Any:
    if raw["t"] == "datetime":
        return datetime.fromisoformat(raw["v"])
    if raw["t"] == "date":
        return date.fromisoformat(raw["v"])
    return raw["v"]


class WatermarkSource(Source):
    def __init__(self, cfg: SourceSection, state: State) -> None:
        super().__init__()
        self.cfg = cfg
        self.state = state
        self.engine = engine(cfg.database_url)
        self.next_reconcile = 0.0

    async def prepare(self) -> list[str]:
        return await asyncio.to_thread(table_columns, self.engine, self.cfg.table)

    def _select(self) -> str:
        assert self.cfg.watermark_column
        cols = ", ".join(column(self.engine, c) for c in dict.fromkeys([*self.cfg.mapping, self.cfg.watermark_column]))
        return f"SELECT {cols} FROM {quoted(self.engine, self.cfg.table)}"

    def _read_after(self, cursor: dict[str, Any] | None) -> list[dict[str, Any]]:
        assert self.cfg.watermark_column
        wm, k = column(self.engine, self.cfg.watermark_column), column(self.engine, self.cfg.key[0])
        sql = self._select()
        params: dict[str, Any] = {}
        if cursor:
            sql += f" WHERE {wm} > :wm OR ({wm} = :wm AND {k} > :k)"
            params = {"wm": _load(cursor["wm"]), "k": _load(cursor["k"])}
        sql += f" ORDER BY {wm}, {k}"
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(sql).execution_options(), params)
            return [dict(r._mapping) for r in result.fetchmany(PAGE)]

    def _read_all(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(self._select()))
            return {
                mapping.record_key(r, self.cfg.key): mapping.row_hash(mapping.to_items(r, self.cfg.mapping))
                for r in (dict(x._mapping) for x in rows)
            }

    def _read_keys(self, keys: list[str]) -> list[dict[str, Any]]:
        wanted = set(keys)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(self._select()))
            return [r for r in (dict(x._mapping) for x in rows) if mapping.record_key(r, self.cfg.key) in wanted]

    async def poll(self) -> int:
        _, cursor = await self.state.captured_position(self.cfg.name)
        cursor = cursor or {}
        rows = await asyncio.to_thread(self._read_after, cursor.get("after"))
        n = int(cursor.get("n", 0))
        spooled = 0
        if rows:
            changes: list[Change] = []
            hashes: dict[str, str | None] = {}
            for r in rows:
                n += 1
                items = mapping.to_items(r, self.cfg.mapping)
                key = mapping.record_key(r, self.cfg.key)
                changes.append(Change(f"w{n:015d}", "upsert", key, items))
                hashes[key] = mapping.row_hash(items)
            last = rows[-1]
            assert self.cfg.watermark_column
            after = {"wm": _dump(last[self.cfg.watermark_column]), "k": _dump(last[self.cfg.key[0]])}
            spooled = await self.state.spool(
                self.cfg.name, changes, cursor={**cursor, "after": after, "n": n}, hashes=hashes
            )
        if time.monotonic() >= self.next_reconcile:
            self.next_reconcile = time.monotonic() + self.cfg.reconcile_seconds
            spooled += await self.reconcile()
        return spooled

    async def reconcile(self) -> int:
        """Send what differs between the table and what was sent; returns how many changes that made."""
        source = await asyncio.to_thread(self._read_all)
        diff = mapping.reconcile(source, await self.state.sent_hashes(self.cfg.name))
        if not diff.upserts and not diff.deletes:
            return 0
        _, cursor = await self.state.captured_position(self.cfg.name)
        cursor = cursor or {}
        n = int(cursor.get("n", 0))
        changes: list[Change] = []
        hashes: dict[str, str | None] = {}
        for r in await asyncio.to_thread(self._read_keys, diff.upserts):
            n += 1
            items = mapping.to_items(r, self.cfg.mapping)
            key = mapping.record_key(r, self.cfg.key)
            changes.append(Change(f"w{n:015d}", "upsert", key, items))
            hashes[key] = mapping.row_hash(items)
        for key in diff.deletes:
            n += 1
            parts = key.split("|")
            items = {self.cfg.mapping[c]: v for c, v in zip(self.cfg.key, parts, strict=False)}
            changes.append(Change(f"w{n:015d}", "delete", key, items))
            hashes[key] = None
        return await self.state.spool(self.cfg.name, changes, cursor={**cursor, "n": n}, hashes=hashes)

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)
