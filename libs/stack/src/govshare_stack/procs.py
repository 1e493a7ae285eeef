"""Child processes of the stack: spawning them tied to our lifetime, and ending them for sure.

Every long-running child (Tansu, each service) runs in its own session, so a Ctrl-C in the terminal reaches
only the supervisor, which then stops the children in order. On Linux each child also asks the kernel for a
parent-death signal, so a supervisor killed hard (SIGKILL, OOM) does not leave orphans behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    try:
        # Loaded before any fork: the child may only call async-signal-safe code, not dlopen.
        _libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        _libc = None


def _die_with_parent(parent_pid: int, sig: int) -> Callable[[], None]:
    def setup() -> None:
        if _libc is not None and sig:
            _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        # The parent may have died between fork and prctl; then no signal would ever come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return setup


def tied_to_us(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A child's preexec_fn: the kernel sends it `sig` when this process dies (for asyncio's subprocesses, which
    `spawn` does not start)."""
    return _die_with_parent(os.getpid(), sig)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log: IO[bytes] | None = None,
    cwd: Path | None = None,
    death_signal: int = signal.SIGKILL,
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session, stdout and stderr to `log` (or nowhere).

    Linux sends the parent-death signal when the *thread* that forked the child ends, so a child spawned
    from a worker thread would die with that thread: there it goes without one (call from the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        death_signal = 0
    out: IO[bytes] | int = log if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid(), death_signal),
    )


def terminate(
    proc: subprocess.Popen[bytes], *, grace: float = 10.0, sig: signal.Signals = signal.SIGTERM
) -> int | None:
    """SIGTERM (or `sig`), wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        _signal_group(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def terminate_many(procs: Sequence[subprocess.Popen[bytes]], *, grace: float = 10.0) -> None:
    """Like `terminate`, for several at once: all get SIGTERM together and share the same grace period."""
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in procs:
        terminate(proc, grace=grace)


def kill_group(pid: int, *, wait: float = 5.0) -> None:
    """SIGKILL whatever is left of the process group `pid` led (it was started in its own session), and wait
    up to `wait` seconds until it is gone (so its ports are free)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def pid_alive(pid: int | None) -> bool:
    """True if `pid` is a running process (a zombie waiting to be reaped counts as gone)."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
