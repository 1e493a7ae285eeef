"""Watching the embedded PostgreSQL, Tansu and the front door (nginx) like the services: one that dies is started again on the same
data folder and port, said on the console and counted in stack.json, and the services reconnect by themselves
(their pools drop dead connections; the outbox and the feeds bring back what the memory-only broker lost)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from govshare_stack import procs
from govshare_stack.embedded import Broker, EmbeddedError, EmbeddedPostgres, start_postgres
from govshare_stack.front_door import FrontDoor

CHECK_INTERVAL = 0.5
RETRY_PAUSE = 2.0


class Holder(Protocol):
    postgres: EmbeddedPostgres | None
    broker: Broker | None
    door: FrontDoor | None


class InfrastructureWatch:
    def __init__(self, running: Holder, *, report: Callable[[str], None], on_change: Callable[[], None]) -> None:
        self.running = running
        self.report = report
        self.on_change = on_change
        self.restarts = {"postgres": 0, "kafka": 0, "door": 0}
        self._retry_at = {"postgres": 0.0, "kafka": 0.0, "door": 0.0}

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # PostgreSQL (a daemon, started by pg_ctl) may take its time off the event loop; the broker and the
            # door are started again on the main thread: Linux ties a child's parent-death signal to the thread
            # that forked it, and a child forked elsewhere would outlive a hard-killed supervisor.
            await asyncio.to_thread(self.check_postgres)
            self.check_children()
            try:
                await asyncio.wait_for(stop.wait(), CHECK_INTERVAL)
            except TimeoutError:
                pass

    def check_postgres(self) -> None:
        pg = self.running.postgres
        if pg is not None and not procs.pid_alive(pg.pid) and time.monotonic() >= self._retry_at["postgres"]:
            self._restart_postgres(pg.pgdata)

    def check_children(self) -> None:
        now = time.monotonic()
        broker = self.running.broker
        if broker is not None and not broker.is_running() and now >= self._retry_at["kafka"]:
            self._restart_broker(broker)
        door = self.running.door
        if door is not None and not door.is_running() and now >= self._retry_at["door"]:
            self._restart_door(door)

    def _restart_door(self, door: FrontDoor) -> None:
        self.report(f"nginx 已退出，正在重启 / the front door (nginx) exited; starting it again on {door.url} …")
        try:
            door.restart()
        except EmbeddedError as exc:
            self._retry_at["door"] = time.monotonic() + RETRY_PAUSE
            self.report(f"nginx 重启失败，稍后重试 / nginx did not start again (retrying): {exc}")
            return
        self.restarts["door"] += 1
        self.report(f"nginx 已重启 / the front door is running again (pid {door.pid})")
        self.on_change()

    def _restart_postgres(self, pgdata: Path) -> None:
        self.report("PostgreSQL 已退出，正在重启 / PostgreSQL exited; starting it again on the same data folder …")
        try:
            started = start_postgres(pgdata)
            if not procs.pid_alive(started.pid):
                # The dead server's postmaster.pid is still there until its last backend has gone.
                raise EmbeddedError(f"the server on {pgdata} is still shutting down (stale pid {started.pid})")
        except EmbeddedError as exc:
            self._retry_at["postgres"] = time.monotonic() + RETRY_PAUSE
            self.report(f"PostgreSQL 重启失败，稍后重试 / PostgreSQL did not start again (retrying): {exc}")
            return
        self.running.postgres = started
        self.restarts["postgres"] += 1
        self.report(f"PostgreSQL 已重启 / PostgreSQL is running again (pid {self.running.postgres.pid})")
        self.on_change()

    def _restart_broker(self, broker: Broker) -> None:
        self.report(
            f"Kafka (Tansu) 已退出，正在重启 / the broker exited; starting an empty one on {broker.bootstrap_servers} …"
        )
        try:
            broker.restart_fresh()
        except EmbeddedError as exc:
            self._retry_at["kafka"] = time.monotonic() + RETRY_PAUSE
            self.report(f"Kafka 重启失败，稍后重试 / the broker did not start again (retrying): {exc}")
            return
        self.restarts["kafka"] += 1
        self.report(f"Kafka (Tansu) 已重启 / the broker is running again (pid {broker.pid})")
        self.on_change()
