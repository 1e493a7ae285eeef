"""A department's PostgreSQL table feeds the hosted library through the connector: its inserts, updates and
deletes arrive in order; an outage of exchange-svc loses and doubles nothing; the platform sees the connector's
heartbeat and lag; bad mappings stop it at start; refused rows become dead letters while the rest flow on."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import asyncpg
import pytest

from govshare_common.testing import eventually, eventually_equals

from catalog_svc.demo import PSB
from connector.config import ConfigError
from connector.runtime import Connector
from connector.synthetic import person
from connector_helpers import config, department_db, drop_slots, publish, wal_source


async def test_inserts_updates_and_deletes_arrive_in_order_and_the_platform_sees_the_connector(
    platform, postgres
) -> None:
    dept = await department_db(postgres, rows=3)  # three people before the connector exists: the snapshot
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        cfg = config(world, department=PSB, name="gaj-1", state_url=state, gateway_url=p.gateway_url,
                     sources=[wal_source(world, dept)])
        connector = Connector(cfg)
        await connector.start()
        try:
            await eventually(lambda: _captured(connector, 3))
            db = await asyncpg.connect(dept)
            a, b = person(100), person(101)
            await db.execute("INSERT INTO person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)", *a.values())
            await db.execute("INSERT INTO person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)", *b.values())
            await db.execute("UPDATE person SET xm = '王小明' WHERE sfzh = $1", a["sfzh"])
            await db.execute("DELETE FROM person WHERE sfzh = $1", b["sfzh"])
            await db.execute("UPDATE person SET hjdz = '江苏省常州市钟楼区五星路9号' WHERE sfzh = $1", a["sfzh"])
            await db.close()

            async def ops() -> list[tuple[str, str]]:
                return [(r.record_key, r.op) for r in await world.changes()]

            snapshot = [(person(i)["sfzh"], "insert") for i in range(3)]
            expected = snapshot + [
                (a["sfzh"], "insert"),
                (b["sfzh"], "insert"),
                (a["sfzh"], "update"),
                (b["sfzh"], "delete"),
                (a["sfzh"], "update"),
            ]
            await eventually_equals(ops, expected)
            held = await world.exchange_rows("SELECT data FROM record WHERE resource_code = :c AND record_key = :k",
                                             k=a["sfzh"])
            assert held[0].data == {**{"GMSFHM": a["sfzh"], "MZ": "01"}, "XM": "王小明", "HJDZ": "江苏省常州市钟楼区五星路9号"}

            # The platform office sees the connector's heartbeat and lag through the API.
            admin = {"Authorization": f"Bearer {await p.token()}"}

            async def listed() -> object:
                r = await http.get("/api/v1/exchange/connectors", headers=admin)
                items = [i for i in r.json()["items"] if i["name"] == "gaj-1"]
                return items and items[0]["sources"] and items[0]["sources"][0]["pushed_rows"] == 8 and items[0]

            seen = await eventually(listed)
            assert seen["online"] is True and seen["department_code"] == PSB.code
            assert seen["lag_rows"] == 0
            report = await connector.report()
            assert report["sources"][0]["spool_depth"] == 0 and report["sources"][0]["last_error"] is None
            assert report["sources"][0]["wal_retained_bytes"] is not None
        finally:
            await connector.stop()
            await drop_slots(dept)


async def _captured(connector: Connector, n: int) -> bool:
    report = await connector.report()
    return all(s["captured_rows"] >= n for s in report["sources"])
