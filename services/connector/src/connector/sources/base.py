"""What every source shares: its table name split into schema and name, and the department database engine."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from connector.config import SourceSection


def split_table(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return (schema or None), name


def sync_url(url: str) -> str:
    """A plain postgresql:// URL means psycopg here (the department database is read through SQLAlchemy)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def engine(url: str) -> sa.Engine:
    return sa.create_engine(sync_url(url), pool_size=2, max_overflow=2, pool_pre_ping=True)


def table_columns(eng: sa.Engine, table: str) -> list[str]:
    schema, name = split_table(table)
    return [c["name"] for c in sa.inspect(eng).get_columns(name, schema=schema)]


def quoted(eng: sa.Engine, table: str) -> str:
    prep = eng.dialect.identifier_preparer
    schema, name = split_table(table)
    return (prep.quote_schema(schema) + "." if schema else "") + prep.quote(name)


def column(eng: sa.Engine, name: str) -> str:
    return str(eng.dialect.identifier_preparer.quote(name))


class Source:
    cfg: SourceSection

    async def prepare(self) -> list[str]:
        """Connect, set up what capture needs; returns the table's columns (for the mapping check)."""
        raise NotImplementedError

    async def poll(self) -> int:
        """Capture what is new into the spool; returns how many changes."""
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.cfg.kind, "table": self.cfg.table, "resource": self.cfg.resource}
