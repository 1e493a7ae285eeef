"""`govshare up` heals itself: the demo seeds on every fresh start, quiet or loaded; a killed PostgreSQL or broker
is started again and the services recover with nothing lost; one service's crashes are forgiven with time, and
an optional service never takes the platform down."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_helpers import audit_entries, login, new_auditor, wait_until

from govshare_stack import supervisor as supervisor_module
from govshare_stack.errors import StartupFailed
from govshare_stack.supervisor import ServiceProcess, ServiceSpec, Supervisor

BURN = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass\n"


@pytest.mark.parametrize("machine", ["quiet", "loaded"])
def test_a_fresh_up_with_demo_seeds_every_step(govshare, real_services, machine: str) -> None:
    home = govshare.data_dir / "home"
    env = govshare.env(home, GOVSHARE_GATEWAY_PORT=str(govshare.free_port()))
    burners = []
    if machine == "loaded":  # two busy processes on the two cores while the platform starts and seeds
        burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
    try:
        run = govshare.up(env, "--demo", "--ready-timeout", "240")
        stack = run.wait_ready(timeout=300)
        run.wait_output("demo ready", timeout=400, failed="演示数据失败")
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    output = run.output()
    assert "demo seeding failed" not in output, output
    credentials = json.loads((home / "demo-credentials.json").read_text())
    gateway = stack["gateway_url"]
    auditor = next(name for name, user in credentials["users"].items() if "auditor" in user["roles"])
    admin = login(gateway, "admin", credentials["users"]["admin"]["password"])
    from exchange_svc.demo import DEMO_BATCHES

    r = httpx.get(f"{gateway}/api/v1/exchange/resources", params={"limit": 200}, headers=admin, timeout=30)
    records = {item["name"]: item["records"] for item in r.json()["items"]}
    assert all(records.get(name, 0) > 0 for name in DEMO_BATCHES), records
    requests = httpx.get(f"{gateway}/api/v1/requests", headers=admin, timeout=30).json()
    assert requests["total"] >= 6
    assert login(gateway, auditor, credentials["users"][auditor]["password"])
    # The demo departments' connectors run under the supervisor and answer /readyz like the services.
    stack = run.stack()
    assert {"connector-gaj", "connector-mzj"} <= set(stack["services"]), stack["services"]
    wait_until(lambda: govshare.run(env, "status").returncode == 0, "every part, the connectors too, ready")
    assert run.terminate() == 0, run.output()


def kill_hard(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def test_killed_postgres_and_broker_come_back_by_themselves_and_nothing_is_lost(govshare, real_services) -> None:
    home = govshare.data_dir / "home"
    env = govshare.env(home, GOVSHARE_GATEWAY_PORT=str(govshare.free_port()))
    run = govshare.up(env, "--ready-timeout", "240")
    stack = run.wait_ready(timeout=300)
    gateway = stack["gateway_url"]
    admin_password = (home / "secrets" / "admin-password").read_text().strip()
    admin = login(gateway, "admin", admin_password)

    def add_department(code17: str, name: str) -> str:
        from govshare_common.identifiers import uscc_check_char

        code = code17 + uscc_check_char(code17)
        r = httpx.post(
            f"{gateway}/api/v1/identity/departments",
            json={"code": code, "name": name, "level": "district"},
            headers=admin,
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return code

    def departments() -> set[str]:
        r = httpx.get(f"{gateway}/api/v1/identity/departments?limit=100", headers=admin, timeout=30)
        return {d["code"] for d in r.json()["items"]} if r.status_code == 200 else set()

    def platform_ready() -> bool:
        return govshare.run(env, "status").returncode == 0

    before = add_department("11320404014000101", "公安局")

    kill_hard(stack["postgres"]["pid"])
    # While the database is away the door still refuses and records; killed then, the gateway has written none
    # of those records anywhere but its journal, and must write each exactly once when it is back.
    for n in range(30):
        assert httpx.get(f"{gateway}/api/v1/catalog/resources/journal-probe-{n}", timeout=30).status_code == 401
    kill_hard(run.stack()["services"]["gateway"]["pid"])
    run.wait_output("PostgreSQL is running again", timeout=120)
    wait_until(platform_ready, "every part ready after PostgreSQL was killed")
    assert "restarted 1×" in govshare.run(env, "status").stdout
    admin = login(gateway, "admin", admin_password)
    after_pg = wait_until(lambda: _try(add_department, "11320404014000102", "民政局"), "a write after the restart")
    assert {before, after_pg} <= departments()

    kill_hard(run.stack()["kafka"]["pid"])
    run.wait_output("the broker is running again", timeout=120)
    wait_until(platform_ready, "every part ready after the broker was killed")
    after_kafka = add_department("11320404014000103", "人社局")

    # Every change, before and after both kills, reaches the audit log through the events pipeline.
    auditor = new_auditor(gateway, admin)

    def audited() -> bool:
        logged = json.dumps(audit_entries(gateway, auditor, "identity.department.changed", 100))
        return all(code in logged for code in (before, after_pg, after_kafka))

    wait_until(audited, "the three department changes in the audit log", timeout=180)

    def probes_logged() -> list[str]:
        return re.findall(r"journal-probe-\d+", json.dumps(audit_entries(gateway, auditor, "gateway.access", 500)))

    # Newest first, 500 a page: polled slowly, so that the polls' own access records do not push the probes off it.
    deadline = time.monotonic() + 120
    while len(logged := probes_logged()) < 30 and time.monotonic() < deadline:
        time.sleep(2)
    assert sorted(logged) == sorted(f"journal-probe-{n}" for n in range(30))
    assert run.terminate() == 0, run.output()


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except AssertionError:
        return None


class ExitingSpec(ServiceSpec):
    def argv(self, port: int) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit(3)"]


def crashing(tmp_path: Path, name: str, *, optional: bool) -> ServiceProcess:
    return ServiceProcess(ExitingSpec(name, "none", optional), 0, tmp_path / f"{name}.log")


async def test_an_optional_service_that_keeps_crashing_never_stops_the_platform(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(supervisor_module, "MAX_PAUSE", 0.05)
    console = crashing(tmp_path, "console", optional=True)
    said: list[str] = []
    sup = Supervisor([console], dict(os.environ), report=said.append)
    sup.start_all()
    stop = asyncio.Event()
    watching = asyncio.ensure_future(sup.watch(stop, lambda: None))
    deadline = time.monotonic() + 60
    while console.restarts < 2 * supervisor_module.MAX_RESTARTS and time.monotonic() < deadline:
        assert not watching.done(), said
        await asyncio.sleep(0.05)
    stop.set()
    await watching  # ended by the stop, not by a StartupFailed
    assert console.restarts >= 2 * supervisor_module.MAX_RESTARTS


async def test_the_crash_budget_is_per_time_window(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(supervisor_module, "MAX_PAUSE", 0.05)
    catalog = crashing(tmp_path, "catalog", optional=False)
    sup = Supervisor([catalog], dict(os.environ), report=lambda _m: None)
    sup.start_all()
    with pytest.raises(StartupFailed, match="crashed 6 times"):
        await asyncio.wait_for(sup.watch(asyncio.Event(), lambda: None), 60)

    # The same crashes spread wider than the window are each forgiven in time: the platform goes on.
    monkeypatch.setattr(supervisor_module, "RESTART_WINDOW", 0.01)
    request = crashing(tmp_path, "request", optional=False)
    sup = Supervisor([request], dict(os.environ), report=lambda _m: None)
    sup.start_all()
    stop = asyncio.Event()
    watching = asyncio.ensure_future(sup.watch(stop, lambda: None))
    deadline = time.monotonic() + 60
    while request.restarts < 2 * supervisor_module.MAX_RESTARTS and time.monotonic() < deadline:
        assert not watching.done()
        await asyncio.sleep(0.05)
    stop.set()
    await watching
    assert request.restarts >= 2 * supervisor_module.MAX_RESTARTS
