"""The front door's nginx as the stack runs it: a killed master and its orphaned workers give way to a new nginx
on the same port, and nginx's own refusals are in the error shape even with nothing behind it."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import psutil

from govshare_stack.front_door import FrontDoor

from gateway.door_conf import DoorLayout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_killed_nginx_is_replaced_and_its_orphaned_workers_go(tmp_path: Path) -> None:
    layout = DoorLayout(
        listen_port=free_port(),
        gateway_url=f"http://127.0.0.1:{free_port()}",  # nothing listens: every decision is unavailable
        service_urls={},
        access_log=tmp_path / "journal" / "current.jsonl",
        error_log=tmp_path / "nginx-error.log",
        worker_processes=2,
    )
    door = FrontDoor(layout)
    door.start()
    try:
        assert door.pid is not None
        old_workers = psutil.Process(door.pid).children()
        assert len(old_workers) >= 2
        os.kill(door.pid, signal.SIGKILL)  # the master dies; its workers would go on accepting
        door.restart()
        assert all(not w.is_running() or w.status() == psutil.STATUS_ZOMBIE for w in old_workers)
        r = httpx.get(f"{door.url}/api/v1/catalog/resources", timeout=10, trust_env=False)
        assert r.status_code == 503 and r.json()["code"] == "decision_unavailable"
        assert r.json()["trace_id"] == r.headers["x-request-id"]
        big = httpx.post(f"{door.url}/api/v1/catalog/resources", content=b"x" * (11 << 20), timeout=10, trust_env=False)
        assert big.status_code == 413 and big.json()["code"] == "too_large"
    finally:
        door.stop()
    run_dir = str(door.layout.run_dir)  # nginx's command line names it (-p)
    assert not [p for p in psutil.process_iter(["cmdline"]) if run_dir in " ".join(p.info["cmdline"] or [])]
