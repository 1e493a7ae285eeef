"""The platform's services as child processes: which ones there are, starting them on their ports, waiting
until each answers /readyz, restarting one that crashes, and stopping them all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from subprocess import Popen

import httpx

from govshare_common.keep_alive import SERVER_GRACEFUL_SHUTDOWN_SECONDS, SERVER_KEEP_ALIVE_SECONDS
from govshare_stack import procs
from govshare_stack.errors import StackError, StartupFailed
from govshare_stack.ports import LOCALHOST, tcp_reachable

# Set to a JSON object {service name: python module} to run stand-in apps instead of the real services
# (used by the stack's own tests and when developing the stack without the services).
MODULES_OVERRIDE_ENV = "GOVSHARE_STACK_SERVICE_MODULES"

LOG_TAIL_LINES = 20
# A service that crashes more than MAX_RESTARTS times within RESTART_WINDOW seconds stops the platform (unless it
# is optional); crashes older than the window are forgiven, so a long-lived platform is not stopped by rare ones.
MAX_RESTARTS = 5
RESTART_WINDOW = 600.0
MAX_PAUSE = 30.0
MAX_REPLICAS = 16


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    # The platform works without it (the console's pages, the demo connector): it is restarted for ever,
    # never a reason to stop the rest.
    optional: bool = False
    # uvicorn worker processes on the one port: the gateway's decision processes, every service's replicas.
    workers: int = 1

    def argv(self, port: int) -> list[str]:
        workers = ["--workers", str(self.workers)] if self.workers > 1 else []
        return [
            sys.executable,
            "-m",
            "uvicorn",
            f"{self.module}.app:create_app",
            "--factory",
            "--host",
            LOCALHOST,
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-keep-alive",
            str(SERVER_KEEP_ALIVE_SECONDS),
            "--timeout-graceful-shutdown",
            str(SERVER_GRACEFUL_SHUTDOWN_SECONDS),
            *workers,
        ]


@dataclass(frozen=True)
class ProgramSpec(ServiceSpec):
    """A program of the platform's that is not one of its web services (a demo department's connector)."""

    command: tuple[str, ...] = ()

    def argv(self, port: int) -> list[str]:
        return list(self.command)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("gateway", "gateway"),
    ServiceSpec("catalog", "catalog_svc"),
    ServiceSpec("request", "request_svc"),
    ServiceSpec("exchange", "exchange_svc"),
    ServiceSpec("audit", "audit_svc"),
    ServiceSpec("connector", "connector", optional=True),
    ServiceSpec("console", "console", optional=True),
)


def service_specs(environ: Mapping[str, str] | None = None, *, replicas: int = 1) -> list[ServiceSpec]:
    """Every service, each as `replicas` processes on its one port (the kernel shares its connections out; they
    split their consumer groups' partitions and take each job's tick in turn); the gateway as at least as many
    decision processes as GOVSHARE_GATEWAY_WORKERS asks."""
    env = os.environ if environ is None else environ
    override = env.get(MODULES_OVERRIDE_ENV)
    modules = json.loads(override) if override else {}
    if not 0 < replicas <= MAX_REPLICAS:
        raise StackError(f"--replicas must be a number of processes (1-{MAX_REPLICAS}), got {replicas}.")
    gateway = max(replicas, gateway_workers_from(env))
    return [
        ServiceSpec(s.name, modules.get(s.name, s.module), s.optional, gateway if s.name == "gateway" else replicas)
        for s in SERVICES
    ]


def gateway_workers_from(environ: Mapping[str, str]) -> int:
    """How many gateway (decision) processes run behind nginx: GOVSHARE_GATEWAY_WORKERS, default 2."""
    raw = environ.get("GOVSHARE_GATEWAY_WORKERS", "").strip()
    if not raw:
        return 2
    if not raw.isdigit() or not 0 < int(raw) <= 64:
        raise StackError(f"GOVSHARE_GATEWAY_WORKERS must be a number of processes (1-64), got {raw!r}.")
    return int(raw)


@dataclass
class ServiceProcess:
    spec: ServiceSpec
    port: int
    log_path: Path
    proc: Popen[bytes] | None = None
    ready: bool = False
    restarts: int = 0
    crashes: list[float] = field(default_factory=list)  # monotonic times of the crashes within the window
    restart_at: float | None = None
    last_probe: str = "not started"
    _log_offset: int = 0
    started_at: float = field(default_factory=time.time)
    # This service's own settings on top of the platform's (its database role's URL).
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def start(self, env: Mapping[str, str]) -> None:
        if self.proc is not None:
            # A dead process's own children (uvicorn's workers outlive a killed master) would keep its port.
            procs.kill_group(self.proc.pid)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"----- govshare: {self.name} on port {self.port}, {stamp} -----\n".encode())
            log.flush()
            self._log_offset = log.tell()
            # A master with workers (uvicorn --workers) is told to stop when we die, and stops them: its workers
            # have no parent-death signal of their own and would outlive a master killed outright.
            death_signal = signal.SIGTERM if self.spec.workers > 1 else signal.SIGKILL
            self.proc = procs.spawn(
                self.spec.argv(self.port), env={**env, **self.env}, log=log, death_signal=death_signal
            )
        self.ready = False
        self.started_at = time.time()
        self.last_probe = "starting"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines this run of the service wrote (earlier runs in the same file are left out)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe_exit(self) -> str:
        code = self.exit_code()
        tail = self.log_tail() or "(no output)"
        indented = "\n".join("    " + line for line in tail.splitlines())
        return (
            f"服务 {self.name} 已退出 / service {self.name} exited with code {code}. "
            f"Last lines of {self.log_path}:\n{indented}"
        )


class Supervisor:
    """Runs the services; `report` receives messages meant for the person at the terminal."""

    def __init__(
        self,
        services: list[ServiceProcess],
        env: Mapping[str, str],
        *,
        report: Callable[[str], None] = print,
        grace: float = 10.0,
    ) -> None:
        self.services = services
        self.env = dict(env)
        self.report = report
        self.grace = grace

    def by_name(self, name: str) -> ServiceProcess:
        return next(s for s in self.services if s.name == name)

    def start_all(self) -> None:
        for service in self.services:
            service.start(self.env)

    async def wait_ready(self, limit: float, stop: asyncio.Event) -> None:
        """Return when every service answers GET /readyz with 200.

        Raises StartupFailed when one exits meanwhile or `limit` seconds pass; returns early if `stop` is set.
        """
        deadline = time.monotonic() + limit
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while not stop.is_set():
                pending = [s for s in self.services if not s.ready]
                if not pending:
                    return
                for service in pending:
                    if service.exit_code() is not None:
                        raise StartupFailed(service.describe_exit())
                await asyncio.gather(*(self._probe(client, s) for s in pending))
                if time.monotonic() > deadline:
                    raise StartupFailed(self._describe_not_ready(limit))
                try:
                    await asyncio.wait_for(stop.wait(), 0.2)
                except TimeoutError:
                    pass

    async def _probe(self, client: httpx.AsyncClient, service: ServiceProcess) -> None:
        # Start-up is CPU-bound on small machines: a refused TCP connect costs far less than an HTTP attempt.
        if not tcp_reachable(LOCALHOST, service.port, timeout=0.2):
            service.last_probe = "not listening yet"
            return
        service.ready, service.last_probe = await probe_ready(client, service.url)
        if service.ready:
            self.report(f"  {service.name} 就绪 / ready ({time.time() - service.started_at:.1f} s)")

    def _describe_not_ready(self, timeout: float) -> str:
        parts = [f"服务未就绪 / not every service was ready within {timeout:.0f} s:"]
        for service in self.services:
            if service.ready:
                continue
            tail = "\n".join("    " + line for line in (service.log_tail() or "(no output)").splitlines())
            parts.append(
                f"  {service.name} ({service.url}/readyz: {service.last_probe}); last lines of "
                f"{service.log_path}:\n{tail}"
            )
        parts.append("Raise the limit with --ready-timeout if the machine is just slow.")
        return "\n".join(parts)

    async def watch(self, stop: asyncio.Event, on_change: Callable[[], None]) -> None:
        """Until `stop` is set: restart a service that exits on its own, after a pause that grows with its
        recent crashes (each service on its own clock, so one waiting does not hold back another).

        Raises StartupFailed when a service that is not optional crashes more than MAX_RESTARTS times within
        RESTART_WINDOW seconds.
        """
        while not stop.is_set():
            now = time.monotonic()
            for service in self.services:
                if service.restart_at is not None:
                    if now >= service.restart_at:
                        service.restart_at = None
                        service.start(self.env)
                        on_change()
                    continue
                if service.exit_code() is None:
                    continue
                self.report(service.describe_exit())
                service.crashes = [t for t in service.crashes if now - t < RESTART_WINDOW] + [now]
                recent = len(service.crashes)
                if recent > MAX_RESTARTS and not service.spec.optional:
                    raise StartupFailed(
                        f"服务 {service.name} 反复崩溃 / service {service.name} crashed {recent} times within "
                        f"{RESTART_WINDOW / 60:.0f} minutes; stopping the platform. See {service.log_path}."
                    )
                pause = min(2.0 ** (recent - 1), MAX_PAUSE)
                service.restarts += 1
                service.restart_at = now + pause
                self.report(
                    f"重启 / restarting {service.name} in {pause:.0f} s (restart {service.restarts}; "
                    f"{recent} in the last {RESTART_WINDOW / 60:.0f} minutes)"
                )
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass

    def stop_all(self) -> None:
        """SIGTERM to every service, `grace` seconds to finish, then SIGKILL."""
        running = [s.proc for s in self.services if s.proc is not None]
        procs.terminate_many(running, grace=self.grace)
        for proc in running:
            procs.kill_group(proc.pid)  # a worker its master left behind


async def probe_ready(client: httpx.AsyncClient, base_url: str) -> tuple[bool, str]:
    """(ready?, what /readyz said) for one service."""
    try:
        response = await client.get(f"{base_url}/readyz")
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    if response.status_code == 200:
        return True, "200"
    return False, f"{response.status_code} {response.text[:200]}"
