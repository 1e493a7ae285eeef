"""Exchange ingest and online query (issue 6): a 100,000-row batch in, then single-subject queries out.

exchange-svc runs for real (embedded PostgreSQL and Tansu, a local token issuer) on a real port. Its resource
projection gets one people resource written with SQL (what catalog-svc's published event would write). Then:
- ingest: one 100,000-row JSON-lines batch of new people (valid ID numbers), POSTed over HTTP and streamed;
  then the same people again with a changed phone number (100,000 updates) — rows/s for each, end to end
  (parse, validate every value and check digit, COPY, upsert, change log, event);
- export (issue 19): a granted consumer's JSON-lines export of all of them, streamed, every row's watermark seen;
- baseline (issue 19): the same rows binary-COPYed into a plain table in the same run (`copy_rows_per_s`);
  the CPU of this process and of PostgreSQL per batch, and the rows per CPU-second they add up to;
- query: GET /records by one subject identifier as a granted consumer (masking, access event), one request at a
  time; p50/p95/p99.

    uv run python bench/exchange_ingest.py [--rows 100000] [--queries 500]
    uv run python bench/exchange_ingest.py --rows 10000000      # the large batch (issue 19, item 2)
Keys of issue 19: ingest_insert_rows_per_s, ingest_update_rows_per_s, copy_rows_per_s (a raw COPY of the same rows
into a plain table, same run) and ratio_to_copy.
From --rows 1000000 on, the large-batch run instead: exchange-svc in a process of its own (`govshare service
exchange`, as a container runs it), one batch of that many new people generated while it is sent (the sender
holds none of it), its progress read from GET /batches while it runs, and exchange-svc's peak RSS (VmHWM) —
`peak_rss_mb_<rows in M>m` (goal ≤ 300 at 10 M), beside its RSS before the batch (the baseline, same run). Its
keys are merged into the result file, so the 100,000-row run's keys stay.
Result: bench/results/exchange_ingest.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, postgres_cpu, write_result  # noqa: E402

NAME = "exchange_ingest"
CODE = "101001/000001"
ITEMS = [
    {
        "name": "GMSFHM",
        "label": "公民身份号码",
        "data_type": "C",
        "length": 18,
        "required": True,
        "identifier_kind": "resident_id",
        "sensitivity": "personal",
        "masking_rule": "resident_id",
    },
    {
        "name": "XM",
        "label": "姓名",
        "data_type": "C",
        "length": 50,
        "required": True,
        "sensitivity": "personal",
        "masking_rule": "name",
    },
    {
        "name": "LXDH",
        "label": "联系电话",
        "data_type": "C",
        "length": 20,
        "sensitivity": "personal",
        "masking_rule": "phone",
    },
    {
        "name": "HJDZ",
        "label": "户籍地址",
        "data_type": "C",
        "length": 200,
        "sensitivity": "personal",
        "masking_rule": "address",
    },
    {"name": "CSRQ", "label": "出生日期", "data_type": "D"},
    {"name": "MZ", "label": "民族", "data_type": "C", "length": 2},
]


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2)


def people(n: int) -> list[dict[str, Any]]:
    from govshare_common.identifiers import resident_id_check_char

    rng = random.Random(6)
    out: dict[str, dict[str, Any]] = {}
    while len(out) < n:
        y, m, d = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
        first17 = f"{rng.randint(110000, 659999)}{y:04d}{m:02d}{d:02d}{rng.randint(0, 999):03d}"
        gmsfhm = first17 + resident_id_check_char(first17)
        out[gmsfhm] = {
            "GMSFHM": gmsfhm,
            "XM": rng.choice("王李张刘陈杨黄赵吴周") + rng.choice(["伟", "芳", "娜", "敏", "建华", "秀英"]),
            "LXDH": f"1{rng.randint(3, 9)}{rng.randint(0, 999999999):09d}",
            "HJDZ": f"江苏省常州市钟楼区南大街{rng.randint(1, 999)}号",
            "CSRQ": f"{y:04d}-{m:02d}-{d:02d}",
            "MZ": "01",
        }
    return list(out.values())


def body(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


async def run(n_rows: int, n_queries: int) -> dict[str, Any]:
    import httpx
    from sqlalchemy import text

    from govshare_common.identifiers import uscc_check_char
    from govshare_common.settings import Settings
    from govshare_common.testing import TokenIssuer, free_port, serve
    from govshare_stack.embedded import start_broker, start_postgres

    from exchange_svc.app import create_app

    provider = "11320404MB0000001" + uscc_check_char("11320404MB0000001")
    consumer = "11320404MB0000002" + uscc_check_char("11320404MB0000002")
    root = Path(tempfile.mkdtemp(prefix="govshare-bench-exchange-"))
    pg = start_postgres(root / "pgdata")
    broker = start_broker(log_path=root / "tansu.log")
    try:
        url = pg.create_database("bench")
        port = free_port()
        settings = Settings(
            master_secret="bench-master-secret-0123456789abcdef-0123",
            database_url=url,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic_prefix="bench",
            service_urls={
                n: f"http://127.0.0.1:{p}"
                for n, p in {
                    "exchange": port,
                    "gateway": free_port(),
                    "catalog": free_port(),
                    "request": free_port(),
                }.items()
            },
            log_json=False,
            log_level="WARNING",
        )
        issuer = TokenIssuer()
        async with issuer.running():
            settings.jwks_url = issuer.jwks_url
            app = create_app(settings)
            async with serve(app, port) as base:
                async with app.state.db.engine.begin() as conn:
                    await conn.execute(
                        text(
                            "INSERT INTO resource (code, resource_id, provider_code, provider_name, name, resource_class, "
                            "share_type, format_category, share_method_type, update_cycle, data_items, version, status, "
                            "published_at) VALUES (:c, 'r-1', :p, '公安分局', '人口基本信息', 'base', 'unconditional', "
                            "'database', 'interface', 'daily', CAST(:items AS jsonb), 1, 'published', now())"
                        ),
                        {"c": CODE, "p": provider, "items": json.dumps(ITEMS, ensure_ascii=False)},
                    )
                rows = people(n_rows)
                first = body(rows)
                second = body([{**r, "LXDH": "13800138000"} for r in rows])
                path = f"/api/v1/exchange/resources/{quote(CODE, safe='')}"
                sender = issuer.headers(roles=["dept_system"], department=provider)
                async with httpx.AsyncClient(base_url=base, timeout=600) as http:
                    t0, c0, p0 = time.perf_counter(), time.process_time(), postgres_cpu(pg.pid)
                    r1 = await http.post(
                        f"{path}/batches", params={"batch_id": "b-insert"}, content=first, headers=sender
                    )
                    insert_s, insert_cpu = time.perf_counter() - t0, time.process_time() - c0
                    insert_pg_cpu = postgres_cpu(pg.pid) - p0
                    r1.raise_for_status()
                    t0, c0, p0 = time.perf_counter(), time.process_time(), postgres_cpu(pg.pid)
                    r2 = await http.post(
                        f"{path}/batches", params={"batch_id": "b-update"}, content=second, headers=sender
                    )
                    update_s, update_cpu = time.perf_counter() - t0, time.process_time() - c0
                    update_pg_cpu = postgres_cpu(pg.pid) - p0
                    r2.raise_for_status()
                    copy_s = await raw_copy(url, rows)
                    reader = {
                        **issuer.headers(roles=["dept_system"], department=consumer),
                        "X-Govshare-Purpose": "data_verification",
                    }
                    export = await http.post(f"{path}/exports", json={"format": "jsonl"}, headers=reader)
                    export.raise_for_status()
                    t0, exported = time.perf_counter(), 0
                    c0, p0 = time.process_time(), postgres_cpu(pg.pid)
                    async with http.stream(
                        "GET", f"{path}/exports/{export.json()['id']}/download", headers=reader
                    ) as download:
                        download.raise_for_status()
                        async for line in download.aiter_lines():
                            if line:
                                assert '"_wm":"gx' in line.replace(" ", "")
                                exported += 1
                    export_s, export_cpu = time.perf_counter() - t0, time.process_time() - c0
                    export_pg_cpu = postgres_cpu(pg.pid) - p0
                    assert exported == n_rows
                    rng = random.Random(7)
                    subjects = [rng.choice(rows)["GMSFHM"] for _ in range(n_queries + 20)]
                    for s in subjects[:20]:
                        (await http.get(f"{path}/records", params={"subject": s}, headers=reader)).raise_for_status()
                    latencies = []
                    for s in subjects[20:]:
                        t0 = time.perf_counter()
                        resp = await http.get(f"{path}/records", params={"subject": s}, headers=reader)
                        latencies.append((time.perf_counter() - t0) * 1000)
                        resp.raise_for_status()
                        assert resp.json()["total"] == 1
        seal_cost = sealing_cost(rows, root / "bench-keys")
        return {
            **seal_cost,
            "rows": n_rows,
            "batch_mb": round(len(first) / 2**20, 1),
            "ingest_insert_seconds": round(insert_s, 2),
            "ingest_insert_rows_per_s": round(n_rows / insert_s),
            "ingest_update_seconds": round(update_s, 2),
            "ingest_update_rows_per_s": round(n_rows / update_s),
            "ingest_insert_cpu_s": round(insert_cpu, 2),
            "ingest_update_cpu_s": round(update_cpu, 2),
            "ingest_insert_postgres_cpu_s": round(insert_pg_cpu, 2),
            "ingest_update_postgres_cpu_s": round(update_pg_cpu, 2),
            # What two idle cores would carry at this CPU cost (this process and PostgreSQL together).
            "ingest_insert_rows_per_cpu_s": round(n_rows / (insert_cpu + insert_pg_cpu)),
            "ingest_update_rows_per_cpu_s": round(n_rows / (update_cpu + update_pg_cpu)),
            "copy_seconds": round(copy_s, 2),
            "copy_rows_per_s": round(n_rows / copy_s),
            "ratio_to_copy": round(min(n_rows / insert_s, n_rows / update_s) / (n_rows / copy_s), 3),
            "export_seconds": round(export_s, 2),
            "export_rows_per_s": round(n_rows / export_s),
            "export_cpu_s": round(export_cpu, 2),
            "export_postgres_cpu_s": round(export_pg_cpu, 2),
            "export_rows_per_cpu_s": round(n_rows / (export_cpu + export_pg_cpu)),
            "inserted": r1.json()["inserted"],
            "updated": r2.json()["updated"],
            "queries": n_queries,
            "query_p50_ms": pct(latencies, 50),
            "query_p95_ms": pct(latencies, 95),
            "query_p99_ms": pct(latencies, 99),
            "query_mean_ms": round(statistics.mean(latencies), 2),
            "notes": "HTTP end to end against exchange-svc directly (no gateway), one request at a time; ingest "
            "includes validation of every value and check digit, COPY, upsert, change log and the event. "
            "ratio_to_copy: the slower of insert and update against a raw COPY of the same rows (copy_rows_per_s) "
            "in the same run; export_rows_per_s: a granted consumer's JSON-lines export of all of them, every row watermarked, streamed over HTTP; *_cpu_s: this process's CPU (service and client) during each batch and the export; "
            "*_postgres_cpu_s: the PostgreSQL server's (all its processes) in the same span.",
        }
    finally:
        broker.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def raw_copy(url: str, rows: list[dict[str, Any]]) -> float:
    """The baseline: the same rows binary-COPYed into a plain table with no index, no validation, no sealing —
    what PostgreSQL alone takes to receive them, on the same machine in the same minute."""
    import asyncpg

    names = [i["name"] for i in ITEMS]
    records = [tuple(r[n] for n in names) for r in rows]
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        columns = ", ".join(f'"{n}" text' for n in names)
        await conn.execute(f"CREATE TABLE copy_baseline ({columns})")
        t0 = time.perf_counter()
        await conn.copy_records_to_table("copy_baseline", records=records, columns=names)
        return time.perf_counter() - t0
    finally:
        await conn.close()


def sealing_cost(rows: list[dict[str, Any]], keyring: Path) -> dict[str, Any]:
    """Issue 14: what sealing personal data at rest costs the ingest, measured on the same rows in the same run —
    the CPU of opening the stored row and sealing the new one (box + key and subject tokens), per row, against
    the whole ingest's time per row above."""
    from exchange_svc.domain.resources import HostedResource, Item
    from exchange_svc.sealing import Sealer

    resource = HostedResource(
        code=CODE,
        provider_code="p",
        name="bench",
        resource_class="base",
        share_type="conditional",
        format_category="database",
        share_method_type="interface",
        update_cycle="daily",
        items=tuple(Item.from_catalog(i) for i in ITEMS),
        declared_key=None,
        status="published",
    )
    seal = Sealer(keyring).for_resource(resource)
    t0 = time.process_time()
    for row in rows:
        seal.key(row["GMSFHM"])
        seal.subject(row["GMSFHM"])
        seal.open(seal.seal(row))
    cpu = time.process_time() - t0
    return {
        "issue14_seal_cpu_seconds": round(cpu, 3),
        "issue14_seal_rows_per_s": round(len(rows) / cpu) if cpu else None,
        "issue14_seal_us_per_row": round(cpu / len(rows) * 1e6, 1),
    }


LARGE = 1_000_000


def large_body_lines(n: int) -> Iterator[bytes]:
    """n distinct people, made as they are sent: ID numbers of three regions, ten years of birth days and
    1,000 sequence numbers each, every check digit right."""
    from datetime import date, timedelta

    from govshare_common.identifiers import resident_id_check_char

    start = date(1950, 1, 1)
    block: list[str] = []
    for i in range(n):
        born = start + timedelta(days=(i // 1000) % 3650)
        first17 = f"{110101 + i // 3_650_000:06d}{born:%Y%m%d}{i % 1000:03d}"
        gmsfhm = first17 + resident_id_check_char(first17)
        block.append(
            f'{{"GMSFHM":"{gmsfhm}","XM":"张{i % 97}","LXDH":"13{i % 1_000_000_000:09d}",'
            f'"HJDZ":"江苏省常州市钟楼区南大街{i % 999 + 1}号","CSRQ":"{born:%Y-%m-%d}","MZ":"01"}}\n'
        )
        if len(block) == 5000:
            yield "".join(block).encode()
            block = []
    if block:
        yield "".join(block).encode()


def service_env(settings: Any) -> dict[str, str]:
    """The environment that gives `govshare service` these settings (GOVSHARE_<FIELD>)."""
    import os

    from pydantic import SecretStr

    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        env[f"GOVSHARE_{name.upper()}"] = str(value)
    return env


def spawn_exchange(settings: Any, port: int, log_path: Path) -> Any:
    import subprocess

    command = [str(Path(sys.executable).parent / "govshare"), "service", "exchange"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=service_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM")


async def run_large(n_rows: int) -> dict[str, Any]:
    import subprocess

    import httpx
    import psutil

    from govshare_common.identifiers import uscc_check_char
    from govshare_common.settings import Settings
    from govshare_common.testing import TokenIssuer, free_port
    from govshare_stack.embedded import start_broker, start_postgres

    provider = "11320404MB0000001" + uscc_check_char("11320404MB0000001")
    root = Path(tempfile.mkdtemp(prefix="govshare-bench-large-"))
    pg = start_postgres(root / "pgdata")
    broker = start_broker(log_path=root / "tansu.log")
    proc: subprocess.Popen[bytes] | None = None
    try:
        url = pg.create_database("bench")
        port = free_port()
        issuer = TokenIssuer()
        async with issuer.running():
            settings = Settings(
                master_secret="bench-master-secret-0123456789abcdef-0123",
                database_url=url,
                kafka_bootstrap_servers=broker.bootstrap_servers,
                topic_prefix="bench",
                service_urls={
                    n: f"http://127.0.0.1:{p}"
                    for n, p in {
                        "exchange": port,
                        "gateway": free_port(),
                        "catalog": free_port(),
                        "request": free_port(),
                    }.items()
                },
                jwks_url=issuer.jwks_url,
                home=str(root / "home"),
                log_json=False,
                log_level="WARNING",
            )
            proc = spawn_exchange(settings, port, root / "exchange.log")
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10.0, read=7200.0, write=None)) as http:
                for _ in range(600):
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
                else:
                    raise RuntimeError("exchange-svc did not start:\n" + (root / "exchange.log").read_text()[-3000:])
                import asyncpg

                conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
                try:
                    await conn.execute(
                        "INSERT INTO exchange.resource (code, resource_id, provider_code, provider_name, name, "
                        "resource_class, share_type, format_category, share_method_type, update_cycle, data_items, "
                        "version, status, published_at) VALUES ($1, 'r-1', $2, '公安分局', '人口基本信息', 'base', "
                        "'unconditional', 'database', 'interface', 'daily', $3::jsonb, 1, 'published', now())",
                        CODE,
                        provider,
                        json.dumps(ITEMS, ensure_ascii=False),
                    )
                finally:
                    await conn.close()
                service = psutil.Process(proc.pid)
                rss_start = round(service.memory_info().rss / 2**20, 1)
                sender = issuer.headers(roles=["dept_system"], department=provider)
                path = f"/api/v1/exchange/resources/{quote(CODE, safe='')}/batches"
                sent_bytes = 0

                async def body() -> Any:
                    nonlocal sent_bytes
                    for block in large_body_lines(n_rows):
                        sent_bytes += len(block)
                        yield block

                samples: list[dict[str, Any]] = []
                applying_at: list[float] = []

                async def watch() -> None:
                    while True:
                        await asyncio.sleep(5)
                        try:
                            listed = await http.get(
                                "/api/v1/exchange/batches", params={"batch_id": "large"}, headers=sender
                            )
                        except httpx.HTTPError as exc:  # a busy service answers late; the batch goes on
                            print(f"  progress not read: {exc!r}", file=sys.stderr)
                            continue
                        items = listed.json()["items"] if listed.status_code == 200 else []
                        if items:
                            run = items[0]
                            samples.append(run)
                            if run["state"] == "applying" and not applying_at:
                                applying_at.append(time.perf_counter())
                            print(
                                f"  {run['state']:<10} {run['rows_done']:>10} rows  {run['rows_per_s'] or 0:>8} rows/s  "
                                f"eta {run['eta_seconds']} s  rss {service.memory_info().rss / 2**20:.0f} MB",
                                file=sys.stderr,
                            )

                watcher = asyncio.create_task(watch())
                t0 = time.perf_counter()
                answer = await http.post(path, params={"batch_id": "large"}, content=body(), headers=sender)
                elapsed = time.perf_counter() - t0
                watcher.cancel()
                answer.raise_for_status()
                peak = peak_rss_mb(proc.pid)
                done = answer.json()
        rows_done = [s["rows_done"] for s in samples]
        millions = max(n_rows // 1_000_000, 1)
        return {
            f"peak_rss_mb_{millions}m": peak,
            "large_rows": n_rows,
            "large_rss_mb_before_batch": rss_start,
            "large_batch_mb": round(sent_bytes / 2**20, 1),
            "large_chunk_rows": settings.ingest_chunk_rows,
            "large_seconds": round(elapsed, 1),
            "large_rows_per_s": round(n_rows / elapsed),
            "large_apply_seconds": round(t0 + elapsed - applying_at[0], 1) if applying_at else None,
            "large_inserted": done["inserted"],
            "large_progress_samples": len(samples),
            "large_progress_monotonic": rows_done == sorted(rows_done),
            "large_notes": "exchange-svc in its own process (govshare service exchange), one batch POSTed over HTTP "
            "directly to it and generated while sent; every value and check digit validated, sealed, staged in "
            "chunks, switched in with one transaction; peak RSS is the service's VmHWM after the batch.",
        }
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        broker.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def merge_result(name: str, result: dict[str, Any]) -> Path:
    """The large run's keys written over the result file's, the others kept."""
    from _common import RESULTS

    previous = RESULTS / f"{name}.json"
    kept = json.loads(previous.read_text()) if previous.exists() else {}
    kept.pop("finished_at", None)
    kept.pop("bench", None)
    return write_result(name, {**kept, **result})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    info = machine_info()
    if args.rows >= LARGE:
        result = asyncio.run(run_large(args.rows))
        path = merge_result(NAME, {"large_machine": info, **result})
        print(json.dumps(result, ensure_ascii=False, indent=2))
        print(f"written to {path}")
        return
    result = asyncio.run(run(args.rows, args.queries))
    path = write_result(NAME, {"machine": info, **result})
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
