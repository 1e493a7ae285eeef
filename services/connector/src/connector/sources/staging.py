"""前置库 mode: a table the department fills itself; each row is read once and marked as taken.

The rows read are spooled together with the list of their ids still to be marked, in one state transaction;
marking them taken in the department's table comes after, and a poll first finishes any marking a crash
interrupted. So a row is sent once even if the connector dies between reading and marking it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from connector.config import SourceSection
from connector.domain import mapping
from connector.sources.base import Source
from connector.sources.sql import column, engine, quoted, table_columns
from connector.state import Change, State

PAGE = 5000


class StagingSource(Source):
    def __init__(self, cfg: SourceSection, state: State) -> None:
        super().__init__()
        self.cfg = cfg
        self.state = state
        self.engine = engine(cfg.database_url)

    async def prepare(self) -> list[str]:
        return await asyncio.to_thread(table_columns, self.engine, self.cfg.table)

    def _read(self) -> list[dict[str, Any]]:
        q = lambda c: column(self.engine, c)  # noqa: E731
        cols = [*self.cfg.mapping, self.cfg.id_column] + ([self.cfg.op_column] if self.cfg.op_column else [])
        sql = (
            f"SELECT {', '.join(q(c) for c in dict.fromkeys(cols))} FROM {quoted(self.engine, self.cfg.table)} "
            f"WHERE {q(self.cfg.taken_column)} IS NULL ORDER BY {q(self.cfg.id_column)}"
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql)).fetchmany(PAGE)]

    def _mark(self, ids: list[Any]) -> None:
        q = lambda c: column(self.engine, c)  # noqa: E731
        stmt = sa.text(
            f"UPDATE {quoted(self.engine, self.cfg.table)} SET {q(self.cfg.taken_column)} = CURRENT_TIMESTAMP "
            f"WHERE {q(self.cfg.id_column)} IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        with self.engine.begin() as conn:
            conn.execute(stmt, {"ids": ids})

    async def poll(self) -> int:
        _, cursor = await self.state.captured_position(self.cfg.name)
        pending = (cursor or {}).get("to_mark") or []
        if pending:
            await asyncio.to_thread(self._mark, pending)
            await self.state.spool(self.cfg.name, [], cursor={"to_mark": []}, by_position=False)
            return 0
        rows = await asyncio.to_thread(self._read)
        if not rows:
            return 0
        changes = []
        for r in rows:
            op = str(r.get(self.cfg.op_column) or "upsert").lower() if self.cfg.op_column else "upsert"
            op = "delete" if op in ("delete", "d") else "upsert"
            items = mapping.to_items(r, self.cfg.mapping)
            if op == "delete":
                items = {self.cfg.mapping[c]: items[self.cfg.mapping[c]] for c in self.cfg.key}
            changes.append(Change(f"id-{r[self.cfg.id_column]}", op, mapping.record_key(r, self.cfg.key), items))
        ids = [r[self.cfg.id_column] for r in rows]
        n = await self.state.spool(self.cfg.name, changes, cursor={"to_mark": ids}, by_position=False)
        await asyncio.to_thread(self._mark, ids)
        await self.state.spool(self.cfg.name, [], cursor={"to_mark": []}, by_position=False)
        return n

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)
