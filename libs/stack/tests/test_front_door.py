"""The front door's nginx as the stack runs it: a killed master and its orphaned workers give way to a new nginx
on the same port, and nginx's own refusals are in the error shape even with nothing behind it."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import psutil

from govshare_stack.front_door import FrontDoor

from gateway.access_journal import CURRENT, DoorJournal, Position
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


def test_a_rotation_reopens_the_log_of_every_nginx_sharing_the_journal(tmp_path: Path, outside_tmp: Path) -> None:
    # nginx's workers reopen the log themselves (as nobody when we are root): the journal lives, like a home's,
    # where they can reach it, not in pytest's 0700 tree.
    outside_tmp.chmod(0o755)
    journal_dir = outside_tmp / "journal"
    doors = [
        FrontDoor(
            DoorLayout(
                listen_port=free_port(),
                gateway_url=f"http://127.0.0.1:{free_port()}",
                service_urls={},
                access_log=journal_dir / CURRENT,
                error_log=tmp_path / f"nginx-error-{n}.log",
                worker_processes=1,
            )
        )
        for n in range(2)
    ]
    journal = DoorJournal(journal_dir, segment_bytes=1)
    try:
        for door in doors:
            door.start()

        def ask_each(marker: str) -> None:
            for door in doors:
                r = httpx.get(f"{door.url}/_door/{marker}", timeout=10, trust_env=False)
                assert r.status_code == 404

        def lines_in(path: Path) -> list[str]:
            return path.read_text().splitlines() if path.exists() else []

        ask_each("before")
        assert len(lines_in(journal_dir / CURRENT)) == 2
        size = (journal_dir / CURRENT).stat().st_size
        journal.rotate_if_due(Position(journal.current_segment(), size))
        assert len(lines_in(journal_dir / "000000000001.jsonl")) == 2

        # Each door soon writes into the new segment (nginx reopens its log once its master has had the signal):
        # none goes on appending to the renamed one, which the shipper has finished with.
        deadline = time.monotonic() + 15
        while True:
            for n, door in enumerate(doors):
                assert httpx.get(f"{door.url}/_door/after-{n}", timeout=10, trust_env=False).status_code == 404
            current = "\n".join(lines_in(journal_dir / CURRENT))
            if all(f"/_door/after-{n}" in current for n in range(len(doors))):
                break
            assert time.monotonic() < deadline, f"not every nginx reopened its log: {current!r}"
            time.sleep(0.05)
    finally:
        for door in doors:
            door.stop()
        journal.close()
    assert list(journal_dir.glob("nginx.*.pid")) == []
