"""The department database through SQLAlchemy (any database it reaches, with its driver), for the watermark
and 前置库 sources, subscriptions and the online query."""

from __future__ import annotations

import sqlalchemy as sa

from connector.sources.base import split_table


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
