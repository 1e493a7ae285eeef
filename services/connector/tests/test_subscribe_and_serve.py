"""The consuming side: a subscribing connector writes its subscription's changes into a local table exactly
once across a restart; an online query of an interface resource is answered from the provider's department
database through its connector, masked per the grant, refused at the gateway without one, and a clear 503 when
the connector is down."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
from connector_helpers import config, department_db, drop_slots, publish, wal_source

from govshare_common.testing import eventually, eventually_equals, free_port, serve

from catalog_svc.demo import CIVIL, PSB
from connector.runtime import Connector
from connector.synthetic import person
from connector.web import create_connector_app

LOCAL_TABLE = """
CREATE TABLE local_people (gmsfhm varchar(18) PRIMARY KEY, xm varchar(50), hjdz varchar(200));
CREATE TABLE local_writes (n bigserial PRIMARY KEY, gmsfhm varchar(18), op text);
CREATE FUNCTION count_write() RETURNS trigger AS $$ BEGIN
  INSERT INTO local_writes (gmsfhm, op) VALUES (COALESCE(NEW.gmsfhm, OLD.gmsfhm), TG_OP); RETURN NULL; END $$
  LANGUAGE plpgsql;
CREATE TRIGGER counted AFTER INSERT OR UPDATE OR DELETE ON local_people FOR EACH ROW EXECUTE FUNCTION count_write();
"""


async def test_subscribed_changes_land_in_the_local_table_exactly_once_across_a_restart(platform, postgres) -> None:
    dept = await department_db(postgres)
    local = postgres.create_database(f"mzj_{uuid.uuid4().hex[:10]}")
    db = await asyncpg.connect(local)
    await db.execute(LOCAL_TABLE)
    await db.close()
    states = [postgres.create_database(f"st_{uuid.uuid4().hex[:10]}") for _ in range(2)]
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        # The grant unmasks the key and the name, not the address: the local copy holds what the grant shows.
        await world.grant(["GMSFHM", "XM", "HJDZ"], unmasked=["GMSFHM", "XM"])
        provider = Connector(
            config(
                world,
                department=PSB,
                name="gaj-1",
                state_url=states[0],
                gateway_url=p.gateway_url,
                sources=[wal_source(world, dept)],
            )
        )
        subscription = {
            "name": "hukou-copy",
            "resource": world.code,
            "purpose": "data_verification",
            "database_url": local,
            "table": "local_people",
            "key": ["gmsfhm"],
            "mapping": {"gmsfhm": "GMSFHM", "xm": "XM", "hjdz": "HJDZ"},
            "poll_seconds": 0.05,
            "page_size": 50,
        }
        consumer_cfg = config(
            world,
            department=CIVIL,
            name="mzj-1",
            state_url=states[1],
            gateway_url=p.gateway_url,
            subscriptions=[subscription],
        )
        await provider.start()
        consumer = Connector(consumer_cfg)
        try:
            await consumer.start()
            src = await asyncpg.connect(dept)
            people = [person(i) for i in range(300, 500)]
            await src.executemany(
                "INSERT INTO person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)", [tuple(x.values()) for x in people]
            )

            async def local_rows() -> int:
                conn = await asyncpg.connect(local)
                try:
                    return int(await conn.fetchval("SELECT count(*) FROM local_people"))
                finally:
                    await conn.close()

            await eventually(lambda: _at_least(local_rows, 50))
            await consumer.stop()  # mid-feed
            await src.executemany(
                "UPDATE person SET xm = xm || '某' WHERE sfzh = $1", [(x["sfzh"],) for x in people[:100]]
            )
            await src.executemany("DELETE FROM person WHERE sfzh = $1", [(x["sfzh"],) for x in people[100:150]])
            await src.close()
            consumer = Connector(consumer_cfg)
            await consumer.start()

            async def local_state() -> tuple[int, int]:
                conn = await asyncpg.connect(local)
                try:
                    rows = int(await conn.fetchval("SELECT count(*) FROM local_people"))
                    renamed = int(await conn.fetchval("SELECT count(*) FROM local_people WHERE xm LIKE '%某'"))
                    return rows, renamed
                finally:
                    await conn.close()

            await eventually_equals(local_state, (150, 100), timeout=60)
            conn = await asyncpg.connect(local)
            writes = await conn.fetch("SELECT op, count(*) AS n FROM local_writes GROUP BY op ORDER BY op")
            sample = await conn.fetchrow("SELECT * FROM local_people WHERE gmsfhm = $1", people[160]["sfzh"])
            cursor = await conn.fetchval("SELECT cursor FROM govshare_feed_cursor WHERE name = 'hukou-copy'")
            await conn.close()
            # Every change written once: 200 inserts, 100 updates, 50 deletes, whatever the restart interrupted.
            assert {r["op"]: r["n"] for r in writes} == {"INSERT": 200, "UPDATE": 100, "DELETE": 50}
            assert sample["xm"] == people[160]["xm"] and sample["hjdz"] == "江苏省常州市钟楼区***"
            changes = await world.changes()
            assert cursor == changes[-1].seq
            report = await consumer.report()
            assert report["subscriptions"][0]["cursor"] == cursor and report["subscriptions"][0]["lag"] == 0
        finally:
            await consumer.stop()
            await provider.stop()
            await drop_slots(dept)


async def _at_least(check, n: int) -> bool:
    return await check() >= n


async def test_an_online_query_is_answered_from_the_department_database_masked_per_the_grant(
    platform, postgres
) -> None:
    dept = await department_db(postgres, table="huji", rows=5)
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    port = free_port()
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        cfg = config(
            world,
            department=PSB,
            name="gaj-serve",
            state_url=state,
            gateway_url=p.gateway_url,
            listen=f"127.0.0.1:{port}",
            serve=[
                {
                    "resource": world.code,
                    "database_url": dept,
                    "table": "huji",
                    "subject_column": "sfzh",
                    "mapping": {"sfzh": "GMSFHM", "xm": "XM", "hjdz": "HJDZ", "mz": "MZ"},
                }
            ],
        )
        connector = Connector(cfg)
        consumer_client = world.client(CIVIL)
        token = (
            await http.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": consumer_client["client_id"],
                    "client_secret": consumer_client["client_secret"],
                },
            )
        ).json()["access_token"]
        consumer = {"Authorization": f"Bearer {token}", "X-Govshare-Purpose": "data_verification"}
        asked = person(2)
        async with serve(create_connector_app(connector), port):
            await eventually(lambda: _registered(world))
            refused = await http.get(f"{world.base}/records", params={"subject": asked["sfzh"]}, headers=consumer)
            assert refused.status_code == 403 and refused.json()["details"]["reason"] == "no_live_grant"

            await world.grant(["GMSFHM", "XM"])
            answered = await http.get(f"{world.base}/records", params={"subject": asked["sfzh"]}, headers=consumer)
            assert answered.status_code == 200, answered.text
            body = answered.json()
            assert body["answered_by"] == "connector"
            s = asked["sfzh"]
            assert [i["data"] for i in body["items"]] == [
                {"GMSFHM": s[:6] + "********" + s[-4:], "XM": asked["xm"][0] + "*" * (len(asked["xm"]) - 1)}
            ]

            # Its operations surface: alive, ready (state database and platform reachable), metrics.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as ops:
                assert (await ops.get("/healthz")).json()["status"] == "ok"
                ready = await eventually(lambda: _ready(ops))
                assert ready["checks"] == {"startup": "ok", "state_database": "ok", "platform": "ok"}
                assert "govshare_connector_spool_depth" in (await ops.get("/metrics")).text

            # The connector's endpoint takes no call but the platform's.
            async with httpx.AsyncClient() as direct:
                bypass = await direct.get(
                    f"http://127.0.0.1:{port}/query", params={"resource": world.code, "subject": s}
                )
            assert bypass.status_code == 403 and bypass.json()["code"] == "not_platform"

        # Connector down: a clear 503 in the error shape.
        down = await http.get(f"{world.base}/records", params={"subject": asked["sfzh"]}, headers=consumer)
        assert down.status_code == 503
        assert down.json()["code"] == "connector_unavailable" and set(down.json()) == {
            "code",
            "message",
            "details",
            "trace_id",
        }


async def _ready(ops: httpx.AsyncClient) -> Any:
    r = await ops.get("/readyz")
    return r.json() if r.status_code == 200 else None


async def _registered(world) -> bool:
    rows = await world.exchange_rows("SELECT 1 FROM connector WHERE :c = ANY(serves)")
    return bool(rows)
