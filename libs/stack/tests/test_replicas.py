"""`govshare up --replicas 2`: two processes of every service behind the one front door, and the four claims a
platform office relies on when it scales out — a client's rate holds whichever replica answers, consumers split
their partitions, a job runs once per tick, and a replica killed mid-flow loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from typing import Any

import httpx
import psutil
from stack_helpers import audit_entries, login, new_auditor, wait_until

from govshare_common.identifiers import uscc_check_char

REPLICAS = 2
JOB = "grant-expiry"  # request-svc's job, every 2 s here instead of every minute


def workers_of(master_pid: int) -> list[psutil.Process]:
    """The living uvicorn worker processes under one service's master (not multiprocessing's helpers, nor a
    killed worker its master has yet to reap)."""
    found = []
    for child in psutil.Process(master_pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


async def burst_of_calls(gateway: str, headers: dict[str, str], n: int) -> tuple[Counter[int], float]:
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30) as client:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(client.get("/api/v1/catalog/resources", params={"limit": 1}) for _ in range(n))
        )
        return Counter(r.status_code for r in answers), time.monotonic() - started


def test_two_replicas_of_every_service_keep_rates_split_partitions_run_jobs_once_and_survive_a_kill(
    govshare, real_services
) -> None:
    home = govshare.data_dir / "home"
    env = govshare.env(
        home,
        GOVSHARE_GATEWAY_PORT=str(govshare.free_port()),
        GOVSHARE_DOOR_WORKERS="2",  # the rate's buckets must be shared by nginx's workers as well
        GOVSHARE_JOB_INTERVALS=json.dumps({JOB: 2}),
    )
    run = govshare.up(env, "--replicas", str(REPLICAS), "--ready-timeout", "240")
    stack = run.wait_ready(timeout=300)
    gateway = stack["gateway_url"]

    # Every service is two processes on its one port.
    for name, svc in stack["services"].items():
        assert svc["processes"] == REPLICAS, (name, svc)
        assert len(workers_of(svc["pid"])) == REPLICAS, name
    assert "--replicas N" in govshare.run(env, "up", "--help").stdout

    admin_password = (home / "secrets" / "admin-password").read_text().strip()
    admin = login(gateway, "admin", admin_password)

    def add_department(n: int) -> str:
        code17 = f"11320404{n:09d}"
        code = code17 + uscc_check_char(code17)
        for _ in range(20):
            r = httpx.post(
                f"{gateway}/api/v1/identity/departments",
                json={"code": code, "name": f"副本测试部门{n}", "level": "district"},
                headers=admin,
                timeout=30,
            )
            if r.status_code != 429:
                break
            time.sleep(float(r.headers.get("retry-after", "1")))
        assert r.status_code == 201, r.text
        return code

    # A client's rate is one bucket at the door, whichever gateway process decides: at once, many more calls
    # than its burst, and no more pass than the burst and what refilled meanwhile (per process, twice that).
    department = add_department(0)
    r = httpx.post(
        f"{gateway}/api/v1/identity/clients",
        json={"name": "副本限流", "department_code": department, "rate_per_second": 1, "burst": 3},
        headers=admin,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    r = httpx.post(
        f"{gateway}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created["client_id"],
            "client_secret": created["client_secret"],
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    machine = {"Authorization": f"Bearer {r.json()['access_token']}"}
    statuses, elapsed = asyncio.run(burst_of_calls(gateway, machine, 20))
    assert set(statuses) <= {200, 429}, statuses
    assert 0 < statuses[200] <= 3 + 1 * elapsed + 1, (statuses, elapsed)

    def gateway_cursors() -> list[dict[str, Any]]:
        r = httpx.get(f"{gateway}/api/v1/supervision/pipeline/consumers", headers=admin, timeout=30)
        assert r.status_code == 200, r.text
        return [c for c in r.json()["items"] if c["source"] == "gateway" and c["partition"] >= 0]

    def movers() -> set[int]:
        """The audit-svc processes that last moved a cursor of the gateway's partitions."""
        return {int(c["handled_by"].rsplit(":", 1)[1]) for c in gateway_cursors() if c["handled_by"]}

    codes: list[str] = []

    def add_until(what: str, reached: Any) -> None:
        """Departments are added, one at a time, until the cursors show `reached` (a group that never splits or
        never hands a dead replica's partitions on fails here)."""

        def step() -> bool:
            codes.append(add_department(len(codes) + 1))
            return bool(reached())

        wait_until(step, what, timeout=150)

    # The two audit-svc processes share the gateway's partitions: each cursor names the replica that moved it.
    audit_master = stack["services"]["audit"]["pid"]
    first = {w.pid for w in workers_of(audit_master)}
    add_until("both audit-svc processes handling a share of the partitions", lambda: movers() == first)

    # One of them is killed outright while departments are added: uvicorn starts another, the group gives the
    # dead one's partitions to the living, and the audit log has every change once.
    victim = workers_of(audit_master)[0]
    os.kill(victim.pid, signal.SIGKILL)
    codes.extend(add_department(len(codes) + 1) for _ in range(10))
    wait_until(lambda: len(workers_of(audit_master)) == REPLICAS, "audit-svc back to two processes")
    assert victim.pid not in [w.pid for w in workers_of(audit_master)]
    living = {w.pid for w in workers_of(audit_master)}
    add_until("every partition moved on by a living process", lambda: victim.pid not in movers())
    assert movers() <= living, (gateway_cursors(), living)

    auditor = new_auditor(gateway, admin)

    def audited() -> Counter[str]:
        items = audit_entries(gateway, auditor, "identity.department.changed", 500)
        return Counter(code for item in items for code in codes if code in json.dumps(item))

    seen = wait_until(lambda: (c := audited()) and len(c) == len(codes) and c, "every change in the audit log", 180)
    assert seen == Counter(dict.fromkeys(codes, 1)), seen

    # A job's tick is taken by one replica: however long the platform has run, no more runs than ticks.
    def job() -> dict[str, Any]:
        r = httpx.get(f"{gateway}/api/v1/requests/pipeline/jobs", headers=admin, timeout=30)
        assert r.status_code == 200, r.text
        return next(j for j in r.json()["items"] if j["job"] == JOB)

    ticked = wait_until(lambda: (j := job())["runs"] >= 5 and j, "five ticks of the job")
    assert ticked["interval_seconds"] == 2
    assert ticked["runs"] <= ticked["last_tick"] - ticked["first_tick"] + 1, ticked
    request_workers = {w.pid for w in workers_of(stack["services"]["request"]["pid"])}
    assert int(ticked["last_run_by"].rsplit(":", 1)[1]) in request_workers, ticked

    assert run.terminate() == 0, run.output()
