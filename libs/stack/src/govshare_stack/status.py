"""`govshare status`: is the stack recorded in stack.json alive, and does every service answer /readyz."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from govshare_stack import procs, table
from govshare_stack.home import StackHome
from govshare_stack.ports import split_host_port, tcp_reachable
from govshare_stack.supervisor import probe_ready


@dataclass
class StatusReport:
    stack: dict[str, Any] | None
    statuses: dict[str, str]
    all_ready: bool


async def check_status(home: StackHome) -> StatusReport:
    stack = home.read_stack()
    if stack is None:
        return StatusReport(None, {}, False)
    statuses: dict[str, str] = {}
    ok = procs.pid_alive(stack.get("supervisor_pid"))
    async with httpx.AsyncClient(timeout=3.0, trust_env=False) as client:
        for name, svc in stack.get("services", {}).items():
            if not procs.pid_alive(svc.get("pid")):
                statuses[name] = table.DOWN
                ok = False
                continue
            ready, said = await probe_ready(client, svc["url"])
            statuses[name] = (table.READY if ready else f"{table.NOT_READY} ({said})") + _restarted(svc)
            ok = ok and ready

    pg = stack.get("postgres", {})
    if pg.get("embedded"):
        alive = procs.pid_alive(pg.get("pid"))
        statuses["postgres"] = (table.RUNNING if alive else table.DOWN) + _restarted(pg)
        ok = ok and alive
    else:
        statuses["postgres"] = table.EXTERNAL

    kafka = stack.get("kafka", {})
    reachable = any(
        tcp_reachable(*split_host_port(a, 9092), timeout=2.0)
        for a in str(kafka.get("bootstrap_servers", "")).split(",")
        if a.strip()
    )
    label = table.RUNNING if kafka.get("embedded") else table.EXTERNAL
    statuses["kafka"] = (label if reachable else table.UNREACHABLE) + _restarted(kafka)
    ok = ok and reachable

    door = stack.get("door")
    if door:
        alive = procs.pid_alive(door.get("pid"))
        statuses["door"] = (table.RUNNING if alive else table.DOWN) + _restarted(door)
        ok = ok and alive
    return StatusReport(stack, statuses, ok)


def _restarted(part: dict[str, Any]) -> str:
    count = int(part.get("restarts") or 0)
    return f", 已重启 {count} 次 / restarted {count}×" if count else ""
