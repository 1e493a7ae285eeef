"""Fixtures that run the `govshare` command as a subprocess and clean up after it, whatever happens."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

FAKE_SERVICES = Path(__file__).parent / "fake_services"
sys.path.insert(0, str(Path(__file__).parent))  # the helper module beside the tests (stack_helpers)
SERVICE_MODULES = [
    "gateway",
    "catalog_svc",
    "request_svc",
    "exchange_svc",
    "audit_svc",
    "connector",
    "console",
]
SERVICE_NAMES = ["gateway", "catalog", "request", "exchange", "audit", "connector", "console"]


def worker_port_base() -> int:
    """Each parallel test worker's own range of 200 ports, below the kernel's ephemeral range.

    Several checkouts testing on one machine at once: GOVSHARE_TEST_PORT_BASE moves this one's ranges."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(os.environ.get("GOVSHARE_TEST_PORT_BASE", "20000")) + 200 * int(worker or 0)


_next_public_port = itertools.count()


def free_port() -> int:
    """A free port for a platform's front door, from this worker's range (base+160 … base+199).

    Not an ephemeral port (bind to 0): a test that kills the gateway leaves its port free until the gateway is
    back, and any other worker's in-process service binding port 0 in that gap could take it — the restarted
    gateway's callers would then be talking to somebody else's service."""
    from govshare_stack.ports import port_is_free

    base = worker_port_base() + 160
    for _ in range(40):
        port = base + next(_next_public_port) % 40
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {base}…{base + 39}")


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_group(pid: int | None) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def processes_in_group(pgid: int) -> list[psutil.Process]:
    """The live processes of the group `pgid` led (a child of the stack and whatever it started)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            continue
    return found


def processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if text in cmdline and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@dataclass
class UpRun:
    proc: subprocess.Popen[bytes]
    home: Path
    out_path: Path
    started: float = field(default_factory=time.monotonic)

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stack(self) -> dict[str, Any]:
        return json.loads((self.home / "stack.json").read_text())

    def wait_ready(self, timeout: float = 180.0) -> dict[str, Any]:
        return self.wait_stack("ready", timeout)

    def wait_stack(self, state: str | None = None, timeout: float = 180.0) -> dict[str, Any]:
        """This run's stack.json (not one left over from an earlier run), once it is in `state`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"govshare up exited with {self.proc.returncode}:\n{self.output()}")
            try:
                stack = self.stack()
            except (OSError, ValueError):
                stack = {}
            if stack.get("supervisor_pid") == self.proc.pid and state in (None, stack.get("state")):
                return stack
            time.sleep(0.1)
        raise AssertionError(f"no stack.json in state {state} within {timeout} s:\n{self.output()}")

    def wait_output(self, text: str, timeout: float = 60.0, *, failed: str | None = None) -> None:
        """Until `text` is printed; an AssertionError at once when `failed` is printed instead."""
        deadline = time.monotonic() + timeout
        while text not in (out := self.output()):
            if time.monotonic() > deadline or self.proc.poll() is not None or (failed and failed in out):
                raise AssertionError(f"{text!r} never printed:\n{out}")
            time.sleep(0.1)

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


class GovshareRunner:
    """Starts `govshare` subprocesses with a given home and makes sure none outlives the test."""

    free_port = staticmethod(free_port)
    alive = staticmethod(alive)
    processes_mentioning = staticmethod(processes_mentioning)
    processes_in_group = staticmethod(processes_in_group)

    def __init__(self, tmp_path: Path, data_dir: Path) -> None:
        self.tmp_path = tmp_path
        # Homes (and so pgdata) live here, outside pytest's tmp tree: pytest chmods that tree to 0700 when any
        # session starts, and the embedded server runs as its own OS user when we are root.
        self.data_dir = data_dir
        self.runs: list[UpRun] = []

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
        env["GOVSHARE_HOME"] = str(home)
        env["PYTHONUNBUFFERED"] = "1"
        # Parallel test workers each start platforms: give each its own range of internal ports, or two runs
        # picking "the first free ones" at the same moment take the same ports.
        base = worker_port_base()
        env["GOVSHARE_FIRST_INTERNAL_PORT"] = str(base)
        env["GOVSHARE_EMBEDDED_KAFKA_PORT"] = str(base + 150)  # not 9092, which every worker would prefer
        # Nor the door's 8443: two platforms starting at once both found it free, and the loser's nginx could not
        # bind it and was restarted for ever while its demo waited on it.
        env["GOVSHARE_GATEWAY_TLS_PORT"] = str(base + 151)
        # One gateway process and one nginx worker: several platforms share two cores while the suite runs
        # (a test about the workers asks for more).
        env["GOVSHARE_GATEWAY_WORKERS"] = "1"
        env["GOVSHARE_DOOR_WORKERS"] = "1"
        env.update(extra)
        return env

    def fake_env(self, home: Path, **extra: str) -> dict[str, str]:
        modules = dict.fromkeys(SERVICE_NAMES, "fakesvc")
        env = self.env(home, GOVSHARE_STACK_SERVICE_MODULES=json.dumps(modules), **extra)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(FAKE_SERVICES), env.get("PYTHONPATH", "")] if p)
        return env

    def up(self, env: dict[str, str], *args: str) -> UpRun:
        home = Path(env["GOVSHARE_HOME"])
        out_path = self.tmp_path / f"up-{len(self.runs)}.out"
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "govshare_stack.cli", "up", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
            )
        run = UpRun(proc, home, out_path)
        self.runs.append(run)
        return run

    def run(self, env: dict[str, str], *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "govshare_stack.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp_path,
        )

    def cleanup(self) -> None:
        for run in self.runs:
            stack: dict[str, Any] = {}
            try:
                stack = run.stack()
            except (OSError, ValueError):
                pass
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait(30)
            # Each child leads its own process group; its workers (uvicorn's, nginx's) go with it.
            for part in [*stack.get("services", {}).values(), stack.get("door", {})]:
                kill_group(part.get("pid"))
            kafka_pid = stack.get("kafka", {}).get("pid")
            if alive(kafka_pid):
                os.kill(kafka_pid, signal.SIGKILL)
            for proc in processes_mentioning(str(run.home / "pgdata")):
                proc.kill()


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A fresh folder outside pytest's tmp tree (see GovshareRunner.data_dir), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="govshare-stack-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def govshare(tmp_path: Path, outside_tmp: Path) -> Iterator[GovshareRunner]:
    runner = GovshareRunner(tmp_path, outside_tmp)
    try:
        yield runner
    finally:
        runner.cleanup()


def real_services_available() -> bool:
    import importlib.util

    for module in SERVICE_MODULES:
        try:
            if importlib.util.find_spec(f"{module}.app") is None:
                return False
        except ModuleNotFoundError:
            return False
    return True


@pytest.fixture
def real_services() -> None:
    # Every service is part of the workspace: a missing one is a broken install, and must fail loudly.
    assert real_services_available(), "a service's <module>.app is not importable; run `make install`"
