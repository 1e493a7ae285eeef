"""What the tests of a running `govshare up` do through its front door, as a person would: sign in, wait for
something to become true, make an auditor, read the audit log."""

from __future__ import annotations

import time
from typing import Any

import httpx

AUDITOR_PASSWORD = "Audit-Passw0rd-2026!"


def login(gateway: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(
        f"{gateway}/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def wait_until(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout} s")


def new_auditor(gateway: str, admin: dict[str, str], username: str = "shenji") -> dict[str, str]:
    """An auditor made by the platform administrator, signed in."""
    r = httpx.post(
        f"{gateway}/api/v1/identity/users",
        json={"username": username, "display_name": "审计员", "password": AUDITOR_PASSWORD, "roles": ["auditor"]},
        headers=admin,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return login(gateway, username, AUDITOR_PASSWORD)


def audit_entries(gateway: str, auditor: dict[str, str], type_: str, limit: int) -> list[dict[str, Any]]:
    """The newest audit entries of one type (none while audit-svc does not answer yet)."""
    r = httpx.get(
        f"{gateway}/api/v1/audit/entries", params={"type": type_, "limit": limit}, headers=auditor, timeout=30
    )
    return list(r.json()["items"]) if r.status_code == 200 else []
