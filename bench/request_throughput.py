"""Share-request throughput (issue 5): requests submitted and decided by concurrent clients through the gateway.

The real gateway, catalog-svc and request-svc run in their own processes (`python -m uvicorn <pkg>.app:create_app
--factory`, as `govshare up` starts them) on embedded PostgreSQL and Tansu. Setup goes through the public API:
two filed departments, a client for each (the consumer's a dept_system client, the provider's a dept_admin
user), one conditional resource the provider publishes through catalog-svc, which request-svc learns from
the catalog's events.

Measured: `--concurrency` workers share `--n` requests; each worker submits a request as the consumer
(POST /api/v1/requests) and then decides it as the provider (approve, issuing a grant, for three in four;
reject with a reason for the rest), every call through the gateway. Reported: requests completed per second
(submitted and decided), and p50/p95/p99 per call kind, plus errors.

    uv run python bench/request_throughput.py [--n 10000] [--concurrency 32]
Result: bench/results/request_throughput.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, write_result  # noqa: E402

NAME = "request_throughput"
ADMIN_PASSWORD = "Bench-Passw0rd-2026"
MASTER_SECRET = "bench-internal-secret-0123456789abcdef"
PROVIDER_BODY = "11320404014000001"  # 公安局
CONSUMER_BODY = "11320404014000002"  # 人社局
SERVICES = {"gateway": "gateway", "catalog": "catalog_svc", "request": "request_svc"}


def uscc(body17: str) -> str:
    from govshare_common.identifiers import uscc_check_char

    return body17 + uscc_check_char(body17)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s; see {log}")


def _ok(resp: Any, what: str) -> Any:
    if resp.status_code >= 400:
        raise RuntimeError(f"{what}: {resp.status_code} {resp.text[:300]}")
    return resp.json()


def setup(gateway_url: str) -> dict[str, Any]:
    """Departments, one client each, a published conditional resource — all through the gateway's API."""
    import httpx

    provider, consumer = uscc(PROVIDER_BODY), uscc(CONSUMER_BODY)
    with httpx.Client(base_url=gateway_url, timeout=30.0, trust_env=False) as http:
        r = http.post("/auth/token", data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD})
        admin = {"Authorization": f"Bearer {_ok(r, 'admin token')['access_token']}"}
        for code, name in ((provider, "公安局"), (consumer, "人社局")):
            body = {"code": code, "name": name, "level": "district"}
            _ok(http.post("/api/v1/identity/departments", json=body, headers=admin), f"department {name}")
            filing = {
                "signed_by": "张主任",
                "signed_at": "2026-11-01T09:00:00+08:00",
                "commitment": "遵守共享交换规则承诺书",
            }
            _ok(http.post(f"/api/v1/identity/departments/{code}/filing", json=filing, headers=admin), "filing")
        client = _ok(
            http.post(
                "/api/v1/identity/clients",
                json={
                    "name": "人社局业务系统（压测）",
                    "department_code": consumer,
                    "roles": ["dept_system"],
                    "rate_per_second": 10_000,
                    "burst": 100_000,
                },
                headers=admin,
            ),
            "consumer client",
        )
        r = http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            },
        )
        tokens = {"consumer": {"Authorization": f"Bearer {_ok(r, 'client token')['access_token']}"}}
        # Machine clients hold only dept_system: the provider's reviewer is a person, a dept_admin user.
        user = {
            "username": "gaj_bench",
            "display_name": "公安局信息资源管理员",
            "department_code": provider,
            "roles": ["dept_admin"],
            "password": ADMIN_PASSWORD,
        }
        _ok(http.post("/api/v1/identity/users", json=user, headers=admin), "provider user")
        r = http.post(
            "/auth/token", data={"grant_type": "password", "username": "gaj_bench", "password": ADMIN_PASSWORD}
        )
        tokens["provider"] = {"Authorization": f"Bearer {_ok(r, 'provider token')['access_token']}"}
        resource = {
            "resource_class": "departmental",
            "category_code": "01",
            "category_name": "公安",
            "subcategory_code": "002",
            "subcategory_name": "户政管理",
            "name": "户籍迁移登记信息",
            "summary": "户口迁入、迁出登记记录。",
            "provider_code": provider,
            "provider_name": "公安局",
            "format_category": "database",
            "format_detail": "关系型数据库表",
            "data_items": [
                {"name": "GMSFHM", "label": "公民身份号码", "data_type": "C", "length": 18, "sensitivity": "personal"},
                {"name": "XM", "label": "姓名", "data_type": "C", "length": 50, "sensitivity": "personal"},
                {"name": "QCD", "label": "迁出地", "data_type": "C", "length": 200},
            ],
            "share_type": "conditional",
            "share_conditions": "仅限社保关系转移时按人核验。",
            "legal_basis": "《中华人民共和国户口登记条例》",
            "share_method_class": "platform",
            "share_method_type": "interface",
            "update_cycle": "daily",
        }
        rid = _ok(http.post("/api/v1/catalog/resources", json=resource, headers=tokens["provider"]), "resource")["id"]
        _ok(http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=tokens["provider"]), "submit resource")
        code = _ok(http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin), "publish")["code"]
        # request-svc learns the resource from catalog events: wait until a request for it is accepted.
        deadline = time.monotonic() + 60
        while True:
            r = http.post("/api/v1/requests", json=request_body(code), headers=tokens["consumer"])
            if r.status_code == 201:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"request-svc never learnt {code}: {r.status_code} {r.text[:300]}")
            time.sleep(0.2)
    return {"code": code, **tokens}


def request_body(code: str) -> dict[str, Any]:
    return {
        "resource_code": code,
        "items": ["GMSFHM", "XM"],
        "purposes": ["business_collaboration"],
        "scope": "社保经办科室",
        "security_measures": "专网访问，操作留痕",
        "business_matter": "社会保险关系转移接续",
    }


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def load(gateway_url: str, ctx: dict[str, Any], n: int, concurrency: int) -> dict[str, Any]:
    import httpx

    latencies: dict[str, list[float]] = {"submit": [], "approve": [], "reject": []}
    errors: Counter[str] = Counter()
    counter = iter(range(n))
    done = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal done
        for i in counter:
            t0 = time.perf_counter()
            r = await http.post("/api/v1/requests", json=request_body(ctx["code"]), headers=ctx["consumer"])
            latencies["submit"].append((time.perf_counter() - t0) * 1000)
            if r.status_code != 201:
                errors[f"submit {r.status_code}"] += 1
                continue
            request_id = r.json()["id"]
            kind = "reject" if i % 4 == 3 else "approve"
            body = {"reason": "超出共享条件"} if kind == "reject" else {"items": ["XM"]}
            t0 = time.perf_counter()
            r = await http.post(f"/api/v1/requests/{request_id}/{kind}", json=body, headers=ctx["provider"])
            latencies[kind].append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors[f"{kind} {r.status_code}"] += 1
                continue
            done += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60.0, limits=limits, trust_env=False) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    calls = sum(len(v) for v in latencies.values())
    return {
        "requests": n,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests_decided": done,
        "requests_per_second": round(done / elapsed, 1),
        "calls_per_second": round(calls / elapsed, 1),
        "latency_ms": {
            kind: {"count": len(v), "p50": pct(v, 0.50), "p95": pct(v, 0.95), "p99": pct(v, 0.99)}
            for kind, v in latencies.items()
        },
        "errors": dict(errors),
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="requests to submit and decide (default 10000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, pgdata)")
    args = parser.parse_args()

    from govshare_stack.embedded import start_broker, start_postgres
    from govshare_stack.ports import any_free_port

    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="govshare-bench-request-"))
    work.chmod(0o755)
    print(f"bench {NAME}: working in {work}", flush=True)
    pg = broker = None
    procs: dict[str, subprocess.Popen[bytes]] = {}
    result: dict[str, Any] = {"machine": machine}
    try:
        pg = start_postgres(work / "pgdata")
        database_url = pg.create_database("bench")
        broker = start_broker(log_path=work / "tansu.log")
        ports = {name: any_free_port() for name in SERVICES}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        nowhere = "http://127.0.0.1:9"
        env = dict(os.environ)
        env.update(
            GOVSHARE_DATABASE_URL=database_url,
            GOVSHARE_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
            GOVSHARE_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:6]}",
            GOVSHARE_SERVICE_URLS=json.dumps(
                {**urls, "exchange": nowhere, "audit": nowhere, "connector": nowhere, "console": nowhere}
            ),
            GOVSHARE_MASTER_SECRET=MASTER_SECRET,
            GOVSHARE_ADMIN_PASSWORD=ADMIN_PASSWORD,
            GOVSHARE_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        for name, package in SERVICES.items():
            log = work / f"{name}.log"
            with open(log, "ab") as out:
                app = f"{package}.app:create_app"
                argv = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port"]
                procs[name] = subprocess.Popen(
                    [*argv, str(ports[name]), "--no-access-log"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        for name, proc in procs.items():
            wait_ready(f"{urls[name]}/readyz", proc, 180, name, work / f"{name}.log")
        ctx = setup(urls["gateway"])
        result["load"] = asyncio.run(load(urls["gateway"], ctx, args.n, args.concurrency))
        result["notes"] = [
            "Every call goes through the gateway (token, role and rate-limit checks, proxy, access event).",
            "Each request is submitted by the consumer's client and decided by the provider's: 3 in 4 approved "
            "(a grant is issued and grant.issued emitted), 1 in 4 rejected with a reason.",
            "One resource: all requests compete for the same provider's rows, the worst case for locking.",
        ]
        print(json.dumps(result["load"], ensure_ascii=False, indent=2), flush=True)
    finally:
        for proc in procs.values():
            stop(proc)
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    path = write_result(NAME, result)
    print(f"result: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
