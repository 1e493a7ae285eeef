"""Schema isolation is PostgreSQL's rule: each service connects as its own role, which may use its own schema
and no other service's."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError


async def scalar(app, sql: str):
    async with app.state.db.engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


async def test_a_service_reads_its_own_schema_and_is_refused_every_other(platform) -> None:
    async with platform("gateway", "catalog", "exchange") as p:
        catalog, exchange, gateway = p.apps["catalog"], p.apps["exchange"], p.apps["gateway"]
        database = await scalar(catalog, "SELECT current_database()")
        assert await scalar(catalog, "SELECT session_user") == f"{database}_catalog"
        assert await scalar(catalog, "SELECT count(*) FROM catalog.resource") == 0
        assert await scalar(exchange, "SELECT count(*) FROM exchange.record") == 0
        assert await scalar(gateway, "SELECT count(*) FROM gateway.app_user") >= 1  # the platform admin

        for app, foreign in (
            (catalog, "exchange.record"),
            (exchange, "catalog.resource"),
            (catalog, "gateway.app_user"),  # password hashes
            (exchange, "gateway.client"),
        ):
            with pytest.raises(ProgrammingError, match="permission denied for schema"):
                await scalar(app, f"SELECT count(*) FROM {foreign}")
        # Nor can a service role make itself a way in.
        for statement in ("CREATE SCHEMA sneaky", f'CREATE ROLE "{database}_sneaky"', "CREATE TABLE public.t (x int)"):
            with pytest.raises(ProgrammingError, match="permission denied"):
                async with catalog.state.db.engine.begin() as conn:
                    await conn.execute(text(statement))
