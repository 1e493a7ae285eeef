"""Serve: the online query (联机查询) of an "interface" resource, answered from the department database.

The platform forwards a granted consumer's query here; this answers with every mapped item of the rows found,
and the platform applies the grant's field scope and masking before the consumer sees anything. Only the
platform may ask: the call must carry the token this connector registered with the platform, and come from
one of connector.platform_addresses.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from connector.config import ServeSection
from connector.domain import mapping
from connector.sources.sql import column, engine, quoted, table_columns

MAX_SUBJECTS = 100


class Served:
    def __init__(self, cfg: ServeSection) -> None:
        self.cfg = cfg
        self.engine = engine(cfg.database_url)

    async def prepare(self) -> list[str]:
        return await asyncio.to_thread(table_columns, self.engine, self.cfg.table)

    def _query(self, subjects: list[str], keys: list[str]) -> list[dict[str, Any]]:
        q = lambda c: column(self.engine, c)  # noqa: E731
        cols = ", ".join(q(c) for c in self.cfg.mapping)
        clauses, params = [], {}
        if subjects:
            clauses.append(f"{q(self.cfg.subject_column)} IN :subjects")
            params["subjects"] = subjects
        if keys and self.cfg.key_column:
            clauses.append(f"{q(self.cfg.key_column)} IN :keys")
            params["keys"] = keys
        if not clauses:
            return []
        stmt = sa.text(f"SELECT {cols} FROM {quoted(self.engine, self.cfg.table)} WHERE {' OR '.join(clauses)}")
        stmt = stmt.bindparams(*(sa.bindparam(k, expanding=True) for k in params))
        with self.engine.connect() as conn:
            return [mapping.to_items(dict(r._mapping), self.cfg.mapping) for r in conn.execute(stmt, params)]

    async def query(self, subjects: list[str], keys: list[str]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._query, subjects[:MAX_SUBJECTS], keys[:MAX_SUBJECTS])

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)
