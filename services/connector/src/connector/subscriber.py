"""Subscribe: a subscription's change feed written into a local table of the department, exactly once.

Each page of changes is applied (upsert by key, deletes applied) and the feed cursor moved in one transaction
of the local database, the cursor kept in a small table beside the rows (cursor_table). After a crash the
cursor says exactly which changes the table already holds, whatever the platform's acknowledged cursor says;
the acknowledgement to the platform only tells it how far this subscriber is.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa

from connector.config import SubscriptionSection
from connector.platform import Platform, PlatformRefused, PlatformUnavailable
from connector.sources.sql import column, engine, quoted, table_columns
from connector.state import State

log = logging.getLogger("govshare.connector.subscribe")


class Subscriber:
    def __init__(self, cfg: SubscriptionSection, state: State, platform: Platform) -> None:
        self.cfg = cfg
        self.state = state
        self.platform = platform
        self.engine = engine(cfg.database_url)
        self.cursor_table = sa.Table(
            cfg.cursor_table,
            sa.MetaData(),
            sa.Column("name", sa.String(80), primary_key=True),
            sa.Column("subscription_id", sa.String(64), nullable=False),
            sa.Column("cursor", sa.BigInteger, nullable=False),
        )
        self.columns_of_item = {item: col for col, item in cfg.mapping.items()}
        self._position: tuple[str, int] | None = None

    async def prepare(self) -> list[str]:
        await asyncio.to_thread(self.cursor_table.metadata.create_all, self.engine)
        return await asyncio.to_thread(table_columns, self.engine, self.cfg.table)

    def _local_cursor(self) -> tuple[str, int] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(self.cursor_table.c.subscription_id, self.cursor_table.c.cursor).where(
                    self.cursor_table.c.name == self.cfg.name
                )
            ).one_or_none()
        return (row[0], int(row[1])) if row else None

    async def ensure_subscription(self) -> tuple[str, int]:
        if self._position is not None:
            return self._position
        local = await asyncio.to_thread(self._local_cursor)
        if local is None:
            made = await self.platform.subscribe(self.cfg.resource, self.cfg.purpose, from_start=self.cfg.from_start)
            local = (str(made["id"]), int(made["cursor"]))
            await asyncio.to_thread(self._save_start, *local)
        await self.state.save_subscription(self.cfg.name, self.cfg.resource, local[0])
        self._position = local
        return local

    def _save_start(self, sub_id: str, cursor: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(self.cursor_table).values(name=self.cfg.name, subscription_id=sub_id, cursor=cursor))

    def _apply(self, items: list[dict[str, Any]], cursor: int) -> None:
        table = quoted(self.engine, self.cfg.table)
        q = lambda c: column(self.engine, c)  # noqa: E731
        where = " AND ".join(f"{q(c)} = :k_{i}" for i, c in enumerate(self.cfg.key))
        with self.engine.begin() as conn:
            for change in items:
                data = change.get("data") or {}
                row = {col: data.get(item) for item, col in self.columns_of_item.items() if item in data}
                keys = {f"k_{i}": row.get(c) for i, c in enumerate(self.cfg.key)}
                if any(v is None for v in keys.values()):
                    key_parts = str(change.get("key") or "").split("|")
                    keys = {f"k_{i}": v for i, v in enumerate(key_parts)}
                if change["op"] == "delete":
                    conn.execute(sa.text(f"DELETE FROM {table} WHERE {where}"), keys)
                    continue
                sets = ", ".join(f"{q(c)} = :v_{i}" for i, c in enumerate(row))
                values = {f"v_{i}": v for i, v in enumerate(row.values())}
                updated = conn.execute(sa.text(f"UPDATE {table} SET {sets} WHERE {where}"), {**values, **keys})
                if updated.rowcount == 0:
                    cols = ", ".join(q(c) for c in row)
                    marks = ", ".join(f":v_{i}" for i in range(len(row)))
                    conn.execute(sa.text(f"INSERT INTO {table} ({cols}) VALUES ({marks})"), values)
            conn.execute(
                sa.update(self.cursor_table).where(self.cursor_table.c.name == self.cfg.name).values(cursor=cursor)
            )

    async def step(self) -> bool:
        sub_id, cursor = await self.ensure_subscription()
        page = await self.platform.changes(
            self.cfg.resource, sub_id, self.cfg.purpose, after=cursor, limit=self.cfg.page_size
        )
        items = page.get("items") or []
        nxt = int(page.get("next_cursor") or cursor)
        if items:
            await asyncio.to_thread(self._apply, items, nxt)
            self._position = (sub_id, nxt)
            try:
                await self.platform.ack(self.cfg.resource, sub_id, self.cfg.purpose, nxt)
            except (PlatformUnavailable, PlatformRefused) as exc:
                log.info("subscription %s: acknowledgement not taken (%s); the local cursor rules", self.cfg.name, exc)
        behind = int(page.get("total") or 0) - len(items)
        await self.state.note_subscription(self.cfg.name, cursor=nxt, head=nxt + behind, error=None)
        return bool(items)

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                more = await self.step()
                delay = 0.5
                if not more:
                    await asyncio.sleep(self.cfg.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("subscription %s failed (%s); retrying in %.1f s", self.cfg.name, exc, delay)
                try:
                    await self.state.note_subscription(self.cfg.name, cursor=None, head=None, error=str(exc)[:500])
                except Exception:
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)
