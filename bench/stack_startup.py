"""`govshare up`: cold start to all ready, then idle memory per service process.

Cold start: an empty GOVSHARE_HOME (so initdb runs), a free gateway port, embedded PostgreSQL and Tansu; the
clock runs from launching `govshare up` until its stack.json says every service answered /readyz (the
moment it prints its table). Then, after `--idle` seconds (default 10) of no traffic, RSS and USS of each
service process (psutil), of PostgreSQL (PSS summed over its processes) and of Tansu. Then SIGTERM, and how
long stopping takes and whether any process is left behind. Finally a warm start on the same folder (data
kept from the first run), timed the same way.

Goals (issue 2): cold start ≤ 15 s; idle RSS ≤ 120 MB per service.

    uv run python bench/stack_startup.py [--idle 10] [--no-warm]
Result: bench/results/stack_startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, write_result  # noqa: E402

NAME = "stack_startup"
GOAL_COLD_START_S = 15.0
GOAL_IDLE_RSS_MB = 120.0
MB = 2**20


def govshare_argv() -> list[str]:
    script = Path(sys.executable).parent / "govshare"
    return [str(script)] if script.exists() else [sys.executable, "-m", "govshare_stack.cli"]


def free_port() -> int:
    from govshare_stack.ports import any_free_port

    return any_free_port()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def read_stack(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((home / "stack.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def memory_of(pid: int, *, tree: bool) -> dict[str, float] | None:
    """RSS/USS/PSS in MB of a process (and, with tree, all its descendants, summed)."""
    import psutil

    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)] if tree else [root]
    except psutil.Error:
        return None
    rss = uss = pss = 0.0
    for proc in members:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        uss += info.uss
        pss += getattr(info, "pss", 0.0)
    return {"rss_mb": round(rss / MB, 1), "uss_mb": round(uss / MB, 1), "pss_mb": round(pss / MB, 1)}


def all_pids(stack: dict[str, Any]) -> dict[str, int]:
    pids = {name: svc["pid"] for name, svc in stack.get("services", {}).items() if svc.get("pid")}
    if stack.get("postgres", {}).get("pid"):
        pids["postgres"] = stack["postgres"]["pid"]
    if stack.get("kafka", {}).get("pid"):
        pids["tansu"] = stack["kafka"]["pid"]
    pids["supervisor"] = stack.get("supervisor_pid") or 0
    return {k: v for k, v in pids.items() if v}


def descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def run_up(
    home: Path, port: int, log_path: Path, timeout: float, idle: float | None, admin_password: str | None
) -> dict[str, Any]:
    """One `govshare up`: time to ready, optionally idle memory, then SIGTERM and what is left."""
    env = dict(os.environ)
    for key in ("GOVSHARE_DATABASE_URL", "GOVSHARE_KAFKA_BOOTSTRAP_SERVERS", "GOVSHARE_SERVICE_URLS"):
        env.pop(key, None)
    env.update(GOVSHARE_HOME=str(home), GOVSHARE_GATEWAY_PORT=str(port), PYTHONUNBUFFERED="1")
    if admin_password:
        env["GOVSHARE_ADMIN_PASSWORD"] = admin_password
    run: dict[str, Any] = {"home_was_empty": not any(home.iterdir()), "gateway_port": port}
    with open(log_path, "ab") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            [*govshare_argv(), "up", "--ready-timeout", str(timeout)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    stack: dict[str, Any] | None = None
    known: set[int] = {proc.pid}
    try:
        deadline = started + timeout + 30
        while True:
            stack = read_stack(home)
            if stack:
                known.update(all_pids(stack).values())
            if stack and stack.get("state") == "ready":
                run["ready_seconds"] = round(time.monotonic() - started, 2)
                break
            if proc.poll() is not None:
                run["error"] = f"govshare up exited with code {proc.returncode} before ready"
                run["log_tail"] = tail(log_path)
                return run
            if time.monotonic() > deadline:
                run["error"] = f"not ready after {timeout + 30:.0f} s"
                run["log_tail"] = tail(log_path)
                return run
            time.sleep(0.05)
        said = re.findall(r"is ready \((\d+(?:\.\d+)?) s\)", log_path.read_text(errors="replace"))
        run["ready_seconds_reported_by_govshare"] = float(said[-1]) if said else None

        status_started = time.monotonic()
        status = subprocess.run(
            [*govshare_argv(), "status"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        run["status_exit_code"] = status.returncode
        run["status_seconds"] = round(time.monotonic() - status_started, 2)

        if idle is not None:
            time.sleep(idle)
            pids = all_pids(stack or {})
            for pid in pids.values():
                known.update(descendants(pid))
            services = {
                name: memory_of(pid, tree=True)
                for name, pid in pids.items()
                if name not in ("postgres", "tansu", "supervisor")
            }
            run["idle_seconds"] = idle
            run["idle_memory"] = {
                "services": services,
                "postgres_all_processes": memory_of(pids["postgres"], tree=True) if "postgres" in pids else None,
                "tansu": memory_of(pids["tansu"], tree=False) if "tansu" in pids else None,
                "supervisor": memory_of(pids["supervisor"], tree=False) if "supervisor" in pids else None,
            }
            rss = [m["rss_mb"] for m in services.values() if m]
            run["max_service_rss_mb"] = max(rss) if rss else None
    finally:
        for pid in list(known):
            known.update(descendants(pid))
        stop_started = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                run["stop_error"] = "govshare up did not exit within 60 s of SIGTERM; killed"
                proc.kill()
                proc.wait()
        run["stop_seconds"] = round(time.monotonic() - stop_started, 2)
        run["exit_code_after_sigterm"] = proc.returncode
        time.sleep(0.5)
        left = sorted(pid for pid in known if pid != proc.pid and alive(pid))
        run["processes_left_behind"] = left
        for pid in left:  # ours: started by this `govshare up`
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle before measuring memory")
    parser.add_argument("--timeout", type=float, default=120.0, help="--ready-timeout for govshare up")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm restart")
    parser.add_argument(
        "--stack-admin-password",
        dest="set_admin_password",
        action="store_false",
        help="let govshare up generate the admin password itself (default: the bench sets a strong one)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp GOVSHARE_HOME (logs)")
    args = parser.parse_args()

    machine = machine_info()
    # Not under /tmp/pytest-of-*: pytest re-chmods that tree, and as root PostgreSQL runs as its own user.
    work = Path(tempfile.mkdtemp(prefix="govshare-bench-stack-"))
    home = work / "home"
    home.mkdir()
    log_path = work / "govshare-up.log"
    print(f"bench {NAME}: GOVSHARE_HOME={home}", flush=True)
    # A password the gateway's rules accept (letters of both cases, digits, a symbol), unless one is set: the
    # bench measures start-up, not the stack's choice of default password.
    admin_password = None
    if args.set_admin_password and not os.environ.get("GOVSHARE_ADMIN_PASSWORD"):
        admin_password = "Bench-" + secrets.token_hex(6) + "-Aa1!"
    result: dict[str, Any] = {
        "machine": machine,
        "command": [*govshare_argv(), "up"],
        "admin_password_set_by_bench": admin_password is not None,
    }
    try:
        print("cold start …", flush=True)
        cold = run_up(home, free_port(), log_path, args.timeout, args.idle, admin_password)
        result["cold"] = cold
        if "error" in cold:
            print(f"  failed: {cold['error']}\n{cold.get('log_tail', '')}", flush=True)
        else:
            left = cold["processes_left_behind"] or "nothing"
            print(f"  ready in {cold['ready_seconds']} s", flush=True)
            print(f"  max idle RSS of a service: {cold.get('max_service_rss_mb')} MB", flush=True)
            print(f"  stopped in {cold['stop_seconds']} s; left behind: {left}", flush=True)
            if not args.no_warm:
                print("warm start (same data folder) …", flush=True)
                warm = run_up(home, free_port(), log_path, args.timeout, None, admin_password)
                result["warm"] = warm
                if "error" in warm:
                    print(f"  failed: {warm['error']}\n{warm.get('log_tail', '')}", flush=True)
                else:
                    print(f"  ready in {warm['ready_seconds']} s", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    cold = result["cold"]
    result["goal"] = {"cold_start_seconds": GOAL_COLD_START_S, "idle_rss_mb_per_service": GOAL_IDLE_RSS_MB}
    if "error" not in cold:
        result["meets_goal"] = {
            "cold_start_seconds": cold["ready_seconds"] <= GOAL_COLD_START_S,
            "idle_rss_mb_per_service": (cold.get("max_service_rss_mb") or 0) <= GOAL_IDLE_RSS_MB,
        }
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_result(NAME, result)
    print(f"wrote {path}")
    failed = "error" in cold or "error" in result.get("warm", {})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
