"""Connector CDC (issue 12): department PostgreSQL → connector (WAL) → gateway → hosted library, end to end.

Keys: `rows_per_s` (a backlog of --rows inserts, from their commit until the platform holds every change),
`lag_p99_s` (a steady 1,000 changes/s for --seconds: source commit → platform commit, 99th percentile),
`idle_rss_mb` (the connector program's resident memory when idle), and in the same run `ingest_rows_per_s`:
the platform ingest alone for the same rows (sent straight to the gateway in batches of the same size).
Goals: rows_per_s ≥ 20,000 on the 2-core machine; lag_p99_s ≤ 2; idle_rss_mb ≤ 80.

    .venv/bin/python bench/connector_cdc.py [--rows 20000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "services" / "connector" / "tests"))
os.environ.setdefault("GOVSHARE_LOG_JSON", "false")

from _common import machine_info, write_result  # noqa: E402

NAME = "connector_cdc"
BATCH = int(os.environ.get("CONNECTOR_CDC_BATCH", "5000"))


async def run(rows: int, seconds: int) -> dict[str, object]:
    import asyncpg
    import psutil
    from connector_helpers import RESOURCE, department_db, drop_slots, publish, wal_source

    import conftest as connector_conftest  # the connector tests' platform (gateway, catalog, request, exchange)
    from govshare_common.settings import Settings
    from govshare_stack.embedded import start_broker, start_postgres

    from catalog_svc.demo import PSB
    from connector.synthetic import person

    root = Path(tempfile.mkdtemp(prefix="govshare-bench-cdc-"))
    pg = start_postgres(root / "pgdata")
    broker = start_broker(log_path=root / "tansu.log")
    url = pg.create_database("bench")
    prefix = f"b{uuid.uuid4().hex[:8]}"

    def settings(**kw: object) -> Settings:
        return Settings(
            database_url=url,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic_prefix=prefix,
            master_secret="bench-internal-secret-0123456789abcdef",
            log_json=False,
            log_level="WARNING",
            **kw,
        )  # type: ignore[arg-type]

    from govshare_common.testing import free_port

    urls = {
        n: f"http://127.0.0.1:{free_port()}" for n in (*connector_conftest.MODULES, "audit", "connector", "console")
    }
    p = connector_conftest.Platform(urls, settings)
    proc = None
    try:
        for name in connector_conftest.MODULES:
            await p.start(name)
        async with p.client() as http:
            world = await publish(p, http)
            # The platform ingest alone, for the same rows, into a twin resource.
            twin = dict(RESOURCE, name="户籍人口登记信息（直接报送）")
            psb = await world.token("gaj_admin")
            admin = {"Authorization": f"Bearer {await p.token()}"}
            rid = (await http.post("/api/v1/catalog/resources", json=twin, headers=psb)).json()["id"]
            await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=psb)
            twin_code = (await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)).json()["code"]
            client = world.client(PSB)
            tok = (
                await http.post(
                    "/auth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": client["client_id"],
                        "client_secret": client["client_secret"],
                    },
                )
            ).json()["access_token"]
            import json
            from urllib.parse import quote

            for _ in range(200):
                r = await http.get(
                    f"/api/v1/exchange/resources/{quote(twin_code, safe='')}/items",
                    headers={"Authorization": f"Bearer {tok}"},
                )
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            people = [person(i) for i in range(rows)]
            lines = [{"GMSFHM": x["sfzh"], "XM": x["xm"], "HJDZ": x["hjdz"], "MZ": x["mz"]} for x in people]
            t0 = time.perf_counter()
            for i in range(0, rows, BATCH):
                body = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines[i : i + BATCH]).encode()
                r = await http.post(
                    f"/api/v1/exchange/resources/{quote(twin_code, safe='')}/batches",
                    params={"batch_id": f"direct-{i}"},
                    content=body,
                    headers={"Authorization": f"Bearer {tok}"},
                    timeout=120,
                )
                assert r.status_code == 200, r.text
            ingest_rate = rows / (time.perf_counter() - t0)

            dept = await department_db(pg)
            state = pg.create_database(f"st_{uuid.uuid4().hex[:8]}")
            src = wal_source(world, dept)
            toml = root / "connector.toml"
            mapping = "\n".join(f'{k} = "{v}"' for k, v in src["mapping"].items())
            toml.write_text(
                f"""
[connector]
name = "bench"
state_url = "{state}"
listen = "127.0.0.1:{free_port()}"
[platform]
gateway_url = "{p.gateway_url}"
client_id = "{client["client_id"]}"
client_secret = "{client["client_secret"]}"
heartbeat_seconds = 5
[push]
batch_max_rows = {BATCH}
batch_max_wait_seconds = 0.2
[[sources]]
name = "hukou"
resource = "{world.code}"
kind = "postgres_wal"
database_url = "{dept}"
table = "public.person"
key = ["sfzh"]
slot = "{src["slot"]}"
poll_seconds = 0.1
[sources.mapping]
{mapping}
""",
                encoding="utf-8",
            )
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "connector.cli",
                "run",
                "--config",
                str(toml),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            exch = p.apps["exchange"].state.db.engine
            from sqlalchemy import text

            async def held() -> int:
                async with exch.connect() as conn:
                    return int(
                        (
                            await conn.execute(
                                text("SELECT count(*) FROM record_change WHERE resource_code = :c"), {"c": world.code}
                            )
                        ).scalar_one()
                    )

            # Wait for the connector to be up (its slot made, the empty snapshot done), then measure idle memory.
            db = await asyncpg.connect(dept)
            for _ in range(600):
                if await db.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", src["slot"]):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)
            rss = psutil.Process(proc.pid).memory_info().rss / 2**20

            # Backlog: every row inserted in one transaction, then drained.
            t0 = time.perf_counter()
            async with db.transaction():
                await db.executemany(
                    "INSERT INTO person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)",
                    [tuple(x.values()) for x in people],
                )
            await _until(held, rows)
            cdc_rate = rows / (time.perf_counter() - t0)

            # Steady 1,000 changes/s: updates of the rows already there, 100 every 0.1 s.
            start_seq = await _max_seq(exch, world.code)
            sent: dict[str, float] = {}
            t_start = time.time()
            n = 0
            for tick in range(seconds * 10):
                due = t_start + tick * 0.1
                await asyncio.sleep(max(0.0, due - time.time()))
                batch = people[n % rows : n % rows + 100]
                n += 100
                async with db.transaction():
                    await db.executemany(
                        "UPDATE person SET xm = xm || '一' WHERE sfzh = $1", [(x["sfzh"],) for x in batch]
                    )
                now = time.time()
                for x in batch:
                    sent[x["sfzh"] + f"#{tick}"] = now
            total = seconds * 1000
            await _until(held, rows + total)
            async with exch.connect() as conn:
                arrived = (
                    await conn.execute(
                        text(
                            "SELECT record_key, extract(epoch from at) AS at FROM record_change WHERE resource_code = :c AND seq > :s "
                            "ORDER BY seq"
                        ),
                        {"c": world.code, "s": start_seq},
                    )
                ).all()
            await db.close()
            lags = []
            # The k-th update of a key to arrive is the k-th one sent (one source, in order).
            per_key_sent: dict[str, list[float]] = {}
            for k, v in sent.items():
                per_key_sent.setdefault(k.split("#")[0], []).append(v)
            seen: dict[str, int] = {}
            sealer = p.apps["exchange"].state.sealer  # record keys are stored sealed (encryption at rest)
            for r in arrived:
                key = sealer.open_token(r.record_key)
                i = seen.get(key, 0)
                seen[key] = i + 1
                lags.append(float(r.at) - sorted(per_key_sent[key])[i])
            lags.sort()
            p99 = lags[int(len(lags) * 0.99) - 1]
            await drop_slots(dept)
        return {
            "rows": rows,
            "rows_per_s": round(cdc_rate, 1),
            "ingest_rows_per_s": round(ingest_rate, 1),
            "lag_p99_s": round(p99, 3),
            "lag_p50_s": round(lags[len(lags) // 2], 3),
            "idle_rss_mb": round(rss, 1),
            "steady_changes_per_s": 1000,
            "steady_seconds": seconds,
            "goals": {"rows_per_s": ">= 20000", "lag_p99_s": "<= 2", "idle_rss_mb": "<= 80"},
        }
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()
        await p.close()
        broker.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _max_seq(engine, code: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT coalesce(max(seq), 0) FROM record_change WHERE resource_code = :c"), {"c": code}
                )
            ).scalar_one()
        )


async def _until(count, target: int, timeout: float = 600.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if await count() >= target:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not {target} changes within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    info = machine_info()
    result = asyncio.run(run(args.rows, args.seconds))
    path = write_result(NAME, {"machine": info, **result})
    print(path.read_text())


if __name__ == "__main__":
    main()
