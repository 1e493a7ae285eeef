"""The operator console (issue 13): how fast the platform office's dashboard shows, how fast the calls behind
it answer, and how much the browser downloads.

`govshare up --demo` in a temp GOVSHARE_HOME on a free gateway port (the real platform with the demo data),
then Chromium (Debian's, through Playwright):
- **first_paint_ms**: warm (assets cached, signed in, the dashboard visited once), from clicking 运行总览 in the
  menu until every card of the dashboard shows its content (its chart drawn or its table filled); median of
  the runs. The browser's own first-contentful-paint of a warm page load of /console/ is given beside it.
- **dashboard_api_p95_ms**: the calls the dashboard makes, each sent `--calls` times through the gateway with
  the platform admin's token, one after another at most ~14 a second (under the gateway's per-user rate limit);
  p95 over all of them, and per call. Baseline in the same run: the same number
  of `GET /api/v1/requests/rules` (a proxied call that touches no table).
- **bundle_kb**: gzip size of every file in the built console (dist/), and of what the dashboard loads.

Goals: first_paint_ms ≤ 1,500; dashboard_api_p95_ms ≤ 100; bundle_kb ≤ 900.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, write_result

NAME = "console"
DIST = REPO / "services" / "console" / "web" / "dist"
GOALS = {"first_paint_ms": 1500, "dashboard_api_p95_ms": 100, "bundle_kb": 900}
DASHBOARD_CALLS = [
    ("/console/api/platform/status", {}),
    ("/api/v1/supervision/statistics", {}),
    ("/api/v1/requests/overdue-summary", {}),
    ("/api/v1/grants", {"status": "active", "limit": 200}),
    ("/api/v1/supervision/evaluation", {"year": time.gmtime().tm_year}),
    ("/api/v1/catalog/search", {"limit": 1}),
    ("/api/v1/supervision/chain-status", {}),
]
# The gateway allows a user 20 calls a second (burst 40); the calls are paced below that so the bench measures
# answers, not refusals. The pause is outside the timed span.
PACE_SECONDS = 0.07
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Every card holds a canvas (chart), a filled table, an empty state, a statistic or a paragraph once loaded.
CARDS_DRAWN = """() => {
  const cards = [...document.querySelectorAll('[data-test=dashboard] > .el-card')];
  return cards.length >= 8 && cards.every(c => c.querySelector('canvas, .el-table__row, .el-empty, .el-statistic, p, .el-alert, .el-result'));
}"""


def bundle_kb() -> dict[str, Any]:
    files = [p for p in DIST.rglob("*") if p.is_file()]
    sizes = {str(p.relative_to(DIST)): len(gzip.compress(p.read_bytes(), 9)) for p in files}
    return {"total": round(sum(sizes.values()) / 1024, 1), "files": len(files), "gzip_bytes": sizes}


def p95(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=20)[-1], 2) if len(values) >= 2 else round(values[0], 2)


async def api_timings(base: str, token: str, calls: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    per_call: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as http:
        for path, params in [*DASHBOARD_CALLS, ("/api/v1/requests/rules", {})]:
            await http.get(path, params=params)  # warm
            times = per_call.setdefault(path, [])
            for _ in range(calls):
                await asyncio.sleep(PACE_SECONDS)
                started = time.perf_counter()
                r = await http.get(path, params=params)
                times.append((time.perf_counter() - started) * 1000)
                r.raise_for_status()
    baseline = per_call.pop("/api/v1/requests/rules")
    everything = [t for ts in per_call.values() for t in ts]
    return {
        "p95_ms": p95(everything),
        "per_call_p95_ms": {k: p95(v) for k, v in per_call.items()},
        "per_call_median_ms": {k: round(statistics.median(v), 2) for k, v in per_call.items()},
        "baseline_rules_p95_ms": p95(baseline),
    }


async def browser_timings(base: str, password: str, runs: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = await browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
        page = await context.new_page()
        await page.goto(base + "/console/")
        await page.reload()  # warm: the hashed assets are now in the cache
        fcp = await page.evaluate(
            "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"
        )
        await page.get_by_label("用户名").fill("admin")
        await page.get_by_label("密码").fill(password)
        await page.get_by_role("button", name="登录").click()
        menu = page.get_by_role("menuitem", name="运行总览", exact=True)
        home = page.get_by_role("menuitem", name="首页", exact=True)
        await menu.click()
        await page.wait_for_function(CARDS_DRAWN, timeout=30000)  # the dashboard's chunk is now cached too
        paints = []
        for _ in range(runs):
            await home.click()
            await page.wait_for_selector("[data-test=dashboard]", state="detached")
            started = await page.evaluate("() => performance.now()")
            await menu.click()
            await page.wait_for_function(CARDS_DRAWN, timeout=30000, polling="raf")
            paints.append(await page.evaluate("() => performance.now()") - started)
        transferred = await page.evaluate(
            "() => performance.getEntriesByType('resource').filter(e => e.name.includes('/console/assets/'))"
            ".map(e => e.name.split('/').pop())"
        )
        await browser.close()
    return {
        "first_paint_ms": round(statistics.median(paints), 1),
        "runs_ms": [round(x, 1) for x in paints],
        "warm_page_fcp_ms": round(fcp, 1) if fcp else None,
        "assets_loaded": sorted(set(transferred)),
    }


def wait_for_demo(home: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = json.loads((home / "demo-state.json").read_text())
            if "request.requests" in state.get("completed", {}):
                return
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"govshare up exited with {proc.returncode}")
        time.sleep(1)
    raise RuntimeError("the demo did not finish in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50, help="times each dashboard call is sent")
    parser.add_argument("--runs", type=int, default=7, help="dashboard paints timed")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    if not (DIST / "index.html").is_file():
        print("the console is not built: run `make console`", file=sys.stderr)
        return 1
    from govshare_stack.ports import any_free_port

    info = machine_info()
    port = any_free_port()
    password = "Bench-Console-Passw0rd"
    with tempfile.TemporaryDirectory(prefix="govshare-bench-console-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
        env.update(
            GOVSHARE_HOME=str(home),
            GOVSHARE_GATEWAY_PORT=str(port),
            GOVSHARE_ADMIN_PASSWORD=password,
            GOVSHARE_LOG_LEVEL="WARNING",
        )
        script = Path(sys.executable).parent / "govshare"
        with open(home / "up.log", "ab") as log:
            proc = subprocess.Popen(
                [str(script), "up", "--demo"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_for_demo(home, proc, args.timeout)
            base = f"http://127.0.0.1:{port}"
            form = {"grant_type": "password", "username": "admin", "password": password}
            token = httpx.post(f"{base}/auth/token", data=form, timeout=10).json()["access_token"]
            api = asyncio.run(api_timings(base, token, args.calls))
            paint = asyncio.run(browser_timings(base, password, args.runs))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    bundle = bundle_kb()
    loaded = sum(bundle["gzip_bytes"].get("assets/" + name, 0) for name in paint["assets_loaded"])
    results = {
        "first_paint_ms": paint["first_paint_ms"],
        "dashboard_api_p95_ms": api["p95_ms"],
        "bundle_kb": bundle["total"],
    }
    info["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    doc = {
        "issue": 13,
        **results,
        "goals": GOALS,
        "met": {k: results[k] <= GOALS[k] for k in GOALS},
        "baseline": {"rules_p95_ms": api["baseline_rules_p95_ms"]},
        "dashboard": {**paint, "loaded_kb_gzip": round(loaded / 1024, 1)},
        "api": api,
        "bundle": bundle,
        "machine": info,
    }
    path = write_result(NAME, doc)
    print(json.dumps({**results, "met": doc["met"], "baseline": doc["baseline"]}, ensure_ascii=False))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
