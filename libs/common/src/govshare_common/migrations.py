"""Alembic per service: each service migrates its own schema, with its own version table, at start.

A service's migrations folder holds a two-line env.py that calls `run_env`, so the how lives here once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from govshare_common.outbox import lock_key
from govshare_common.pipeline_tables import PLATFORM_TABLES_DDL, upgrade_pipeline_tables


def run_env(context: Any) -> None:
    """Body of every service's migrations/env.py: migrate on the connection `upgrade` handed over."""
    connection = context.config.attributes["connection"]
    schema = context.config.attributes["schema"]
    context.configure(connection=connection, version_table_schema=schema, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def create_platform_tables(op: Any) -> None:
    """The tables every service has in its schema: outbox, outbox head, inbox, working-day calendar, and the
    revocations it checks tokens against."""
    from govshare_common.calendar_store import CALENDAR_DDL, seed_statements
    from govshare_common.revocations import REVOCATION_DDL

    for ddl in [*PLATFORM_TABLES_DDL, *CALENDAR_DDL, *REVOCATION_DDL]:
        op.execute(ddl)
    for statement, params in seed_statements():
        op.get_bind().execute(text(statement), params)


def create_revocation_table(op: Any) -> None:
    """The revocations table for a schema created before it was one of the platform tables."""
    from govshare_common.revocations import REVOCATION_DDL

    for ddl in REVOCATION_DDL:
        op.execute(ddl)


async def upgrade(engine: AsyncEngine, *, schema: str, migrations_dir: Path) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["schema"] = schema

    def _run(sync_conn: Any) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        # Replicas starting together must not race on the same schema.
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(f"migrate:{schema}")})
        # Looked up first: a service role that owns its schema may not create schemas in the database.
        exists = (await conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema})).first()
        if exists is None:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        await conn.run_sync(_run)
        await upgrade_pipeline_tables(conn)
