"""Sources other than the WAL: any SQLAlchemy database by a watermark column, with the keyed hash
reconciliation that finds deletes and rows the watermark missed; and 前置库 tables the department fills,
read once and marked as taken."""

from __future__ import annotations

import uuid

import asyncpg
from connector_helpers import MAPPING, config, department_db, publish

from govshare_common.testing import eventually_equals

from catalog_svc.demo import PSB
from connector.runtime import Connector
from connector.synthetic import person


async def test_a_watermark_source_sends_changes_and_reconciliation_finds_deletes_and_missed_rows(
    platform, postgres
) -> None:
    dept = await department_db(postgres, rows=4)
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        source = {
            "name": "hukou-wm",
            "resource": world.code,
            "kind": "watermark",
            "database_url": dept,
            "table": "person",
            "key": ["sfzh"],
            "mapping": dict(MAPPING),
            "watermark_column": "updated_at",
            "reconcile_seconds": 0.5,
            "poll_seconds": 0.05,
        }
        connector = Connector(
            config(world, department=PSB, name="gaj-wm", state_url=state, gateway_url=p.gateway_url, sources=[source])
        )
        await connector.start()
        try:

            async def held() -> dict[str, str]:
                rows = await world.exchange_rows("SELECT record_key, data FROM record WHERE resource_code = :c")
                return {r.record_key: r.data["XM"] for r in rows}

            await eventually_equals(held, {person(i)["sfzh"]: person(i)["xm"] for i in range(4)})
            db = await asyncpg.connect(dept)
            await db.execute(
                "UPDATE person SET xm = '钱多多', updated_at = clock_timestamp() WHERE sfzh = $1", person(0)["sfzh"]
            )
            await db.execute("DELETE FROM person WHERE sfzh = $1", person(1)["sfzh"])  # no watermark sees this
            late = person(9)  # committed with a watermark older than what was read: only reconciliation sees it
            await db.execute(
                "INSERT INTO person (sfzh, xm, hjdz, mz, updated_at) VALUES ($1, $2, $3, $4, '2000-01-01')",
                *late.values(),
            )
            await db.close()
            expected = {
                person(0)["sfzh"]: "钱多多",
                person(2)["sfzh"]: person(2)["xm"],
                person(3)["sfzh"]: person(3)["xm"],
            }
            await eventually_equals(held, {**expected, late["sfzh"]: late["xm"]})
        finally:
            await connector.stop()


async def test_a_staging_table_is_read_once_and_marked_as_taken(platform, postgres) -> None:
    dept = postgres.create_database(f"dept_{uuid.uuid4().hex[:10]}")
    db = await asyncpg.connect(dept)
    await db.execute(
        "CREATE TABLE qzk_person (id bigserial PRIMARY KEY, sfzh varchar(18), xm varchar(50), hjdz varchar(200), "
        "mz varchar(2), op varchar(10), taken_at timestamptz)"
    )
    await db.close()
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        source = {
            "name": "qzk",
            "resource": world.code,
            "kind": "staging",
            "database_url": dept,
            "table": "qzk_person",
            "key": ["sfzh"],
            "mapping": dict(MAPPING),
            "op_column": "op",
            "poll_seconds": 0.05,
        }
        connector = Connector(
            config(world, department=PSB, name="gaj-qzk", state_url=state, gateway_url=p.gateway_url, sources=[source])
        )
        await connector.start()
        try:
            db = await asyncpg.connect(dept)
            for i in range(3):
                await db.execute(
                    "INSERT INTO qzk_person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)", *person(i).values()
                )
            await db.execute("INSERT INTO qzk_person (sfzh, op) VALUES ($1, 'delete')", person(1)["sfzh"])

            async def ops() -> list[tuple[str, str]]:
                return [(r.record_key, r.op) for r in await world.changes()]

            sent = [(person(i)["sfzh"], "insert") for i in range(3)] + [(person(1)["sfzh"], "delete")]
            await eventually_equals(ops, sent)

            async def untaken() -> int:
                return int(await db.fetchval("SELECT count(*) FROM qzk_person WHERE taken_at IS NULL"))

            await eventually_equals(untaken, 0)
            await db.close()
        finally:
            await connector.stop()
