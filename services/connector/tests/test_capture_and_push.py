"""A department's PostgreSQL table feeds the hosted library through the connector: its inserts, updates and
deletes arrive in order; an outage of exchange-svc loses and doubles nothing; the platform sees the connector's
heartbeat and lag; bad mappings stop it at start; refused rows become dead letters while the rest flow on."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections import defaultdict

import asyncpg
import pytest
from connector_helpers import config, department_db, drop_slots, publish, wal_source

from govshare_common.testing import eventually, eventually_equals

from catalog_svc.demo import PSB
from connector.config import ConfigError
from connector.runtime import Connector
from connector.synthetic import person


async def test_inserts_updates_and_deletes_arrive_in_order_and_the_platform_sees_the_connector(
    platform, postgres
) -> None:
    dept = await department_db(postgres, rows=3)  # three people before the connector exists: the snapshot
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        cfg = config(
            world,
            department=PSB,
            name="gaj-1",
            state_url=state,
            gateway_url=p.gateway_url,
            sources=[wal_source(world, dept)],
        )
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
            expected = [
                *snapshot,
                (a["sfzh"], "insert"),
                (b["sfzh"], "insert"),
                (a["sfzh"], "update"),
                (b["sfzh"], "delete"),
                (a["sfzh"], "update"),
            ]
            await eventually_equals(ops, expected)
            held = await world.exchange_rows(
                "SELECT data FROM record WHERE resource_code = :c AND record_key = ANY(:k)",
                k=world.stored_keys(a["sfzh"]),
            )
            assert held[0].data == {
                **{"GMSFHM": a["sfzh"], "MZ": "01"},
                "XM": "王小明",
                "HJDZ": "江苏省常州市钟楼区五星路9号",
            }

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


def _assert_each_change_once_in_order(changes: list, expected: dict[str, list[str]]) -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for r in changes:
        seen[r.record_key].append(r.op)
    assert dict(seen) == expected


async def _ten_thousand_changes(url: str) -> dict[str, list[str]]:
    """4,000 inserts, 4,000 updates and 2,000 deletes, committed in 100 transactions."""
    db = await asyncpg.connect(url)
    people = [person(i) for i in range(1000, 5000)]
    expected: dict[str, list[str]] = {}
    try:
        for i in range(0, 4000, 100):
            async with db.transaction():
                await db.executemany(
                    "INSERT INTO person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)",
                    [tuple(p.values()) for p in people[i : i + 100]],
                )
        for i in range(0, 4000, 100):
            async with db.transaction():
                await db.executemany(
                    "UPDATE person SET xm = $2 WHERE sfzh = $1",
                    [(p["sfzh"], p["xm"] + "某") for p in people[i : i + 100]],
                )
        for i in range(0, 2000, 100):
            async with db.transaction():
                await db.executemany("DELETE FROM person WHERE sfzh = $1", [(p["sfzh"],) for p in people[i : i + 100]])
    finally:
        await db.close()
    for n, p in enumerate(people):
        expected[p["sfzh"]] = ["insert", "update"] + (["delete"] if n < 2000 else [])
    return expected


async def test_an_exchange_outage_loses_and_doubles_nothing_of_ten_thousand_changes(platform, postgres) -> None:
    dept = await department_db(postgres)
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        cfg = config(
            world,
            department=PSB,
            name="gaj-1",
            state_url=state,
            gateway_url=p.gateway_url,
            sources=[wal_source(world, dept)],
        )
        connector = Connector(cfg)
        await connector.start()
        try:
            await p.stop("exchange")
            expected = await _ten_thousand_changes(dept)
            await eventually(lambda: _captured(connector, 10_000), timeout=60)
            report = await connector.report()
            assert report["sources"][0]["spool_depth"] == 10_000  # the backlog waits in the spool
            assert report["sources"][0]["last_error"] is not None  # and the outage is visible
            await p.start("exchange")

            async def arrived() -> int:
                return len(await world.changes())

            await eventually_equals(arrived, 10_000, timeout=120)
            _assert_each_change_once_in_order(await world.changes(), expected)
            await eventually(lambda: _drained(connector))
        finally:
            await connector.stop()
            await drop_slots(dept)


async def _drained(connector: Connector) -> bool:
    report = await connector.report()
    return all(s["spool_depth"] == 0 for s in report["sources"])


async def test_a_connector_killed_mid_batch_loses_and_doubles_nothing(platform, postgres, tmp_path) -> None:
    dept = await department_db(postgres)
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        source = wal_source(world, dept)
        client = world.client(PSB)
        toml = tmp_path / "connector.toml"
        toml.write_text(
            f"""
[connector]
name = "gaj-killed"
state_url = "{state}"
listen = "127.0.0.1:0"

[platform]
gateway_url = "{p.gateway_url}"
client_id = "{client["client_id"]}"
client_secret = "{client["client_secret"]}"
heartbeat_seconds = 1

[push]
batch_max_rows = 500
batch_max_wait_seconds = 0.05
retry_max_seconds = 1

[[sources]]
name = "hukou"
resource = "{world.code}"
kind = "postgres_wal"
database_url = "{dept}"
table = "public.person"
key = ["sfzh"]
slot = "{source["slot"]}"
poll_seconds = 0.05
[sources.mapping]
sfzh = "GMSFHM"
xm = "XM"
hjdz = "HJDZ"
mz = "MZ"
""",
            encoding="utf-8",
        )
        program = [sys.executable, "-m", "connector.cli", "run", "--config", str(toml)]
        first = await asyncio.create_subprocess_exec(
            *program, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:

            async def capturing() -> bool:
                db = await asyncpg.connect(state)
                try:
                    return bool(
                        await db.fetchval(
                            "SELECT 1 FROM pg_tables WHERE schemaname = 'govshare_connector' AND tablename = 'source_state'"
                        )
                    ) and bool(
                        await db.fetchval("SELECT 1 FROM govshare_connector.source_state WHERE cursor IS NOT NULL")
                    )
                finally:
                    await db.close()

            await eventually(capturing)
            expected = await _ten_thousand_changes(dept)

            async def some_batches_in() -> bool:
                return len(await world.changes()) >= 1000

            await eventually(some_batches_in, timeout=120, interval=0.01)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        held = len(await world.changes())
        assert held < 10_000  # killed with work left
        log = (tmp_path / "second.log").open("wb")
        second = await asyncio.create_subprocess_exec(*program, stdout=log, stderr=log)
        try:

            async def arrived() -> int:
                return len(await world.changes())

            try:
                await eventually_equals(arrived, 10_000, timeout=120)
            except AssertionError:
                print((tmp_path / "second.log").read_text()[-3000:])
                raise
            _assert_each_change_once_in_order(await world.changes(), expected)
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(second.wait(), 20)
            except TimeoutError:
                second.kill()
                await second.wait()
                raise AssertionError("the connector did not stop on SIGTERM within 20 s") from None
            await drop_slots(dept)


async def test_a_mapping_that_does_not_fit_stops_the_connector_at_start_naming_both_sides(platform, postgres) -> None:
    dept = await department_db(postgres)
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        bad = wal_source(world, dept)
        bad["mapping"] = {"sfzh": "GMSFHM", "xingming": "XM", "mz": "MZ_CODE"}
        connector = Connector(
            config(world, department=PSB, name="gaj-1", state_url=state, gateway_url=p.gateway_url, sources=[bad])
        )
        with pytest.raises(ConfigError) as refused:
            await connector.start()
        await connector.stop()
        problems = refused.value.problems
        assert any("sources[0].mapping.xingming" in m and "no column 'xingming'" in m and "'XM'" in m for m in problems)
        assert any("sources[0].mapping.mz" in m and "no data item 'MZ_CODE'" in m and world.code in m for m in problems)
        await drop_slots(dept)


async def test_a_row_the_platform_refuses_becomes_a_dead_letter_and_the_rest_flow_on(platform, postgres) -> None:
    dept = await department_db(postgres)
    state = postgres.create_database(f"st_{uuid.uuid4().hex[:10]}")
    async with platform() as p, p.client() as http:
        world = await publish(p, http)
        connector = Connector(
            config(
                world,
                department=PSB,
                name="gaj-1",
                state_url=state,
                gateway_url=p.gateway_url,
                sources=[wal_source(world, dept)],
            )
        )
        await connector.start()
        try:
            db = await asyncpg.connect(dept)
            good = [person(i) for i in range(200, 205)]
            broken = {
                **person(205),
                "sfzh": person(205)["sfzh"][:17] + ("0" if person(205)["sfzh"][17] != "0" else "1"),
            }
            async with db.transaction():
                for row in [*good[:2], broken, *good[2:]]:
                    await db.execute("INSERT INTO person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)", *row.values())
            await db.close()

            async def held() -> list[str]:
                return sorted(r.record_key for r in await world.changes())

            await eventually_equals(held, sorted(g["sfzh"] for g in good))
            # The refused row is kept, with the platform's reason, for the department to fix.
            letters = await connector.state.dead_letters()  # type: ignore[union-attr]
            assert [(d["record_key"], d["problems"][0]["item"]) for d in letters] == [(broken["sfzh"], "GMSFHM")]
            await eventually(lambda: _drained(connector))  # the platform's answer is recorded a moment later
            report = await connector.report()
            assert report["sources"][0]["dead_letters"] == 1

            # Fixed and resent, it arrives too.
            await connector.state.resend([letters[0]["id"]], {"GMSFHM": person(205)["sfzh"]})  # type: ignore[union-attr]
            await eventually(lambda: _has(world, person(205)["sfzh"]))
        finally:
            await connector.stop()
            await drop_slots(dept)


async def _has(world, key: str) -> bool:
    return key in {r.record_key for r in await world.changes()}
