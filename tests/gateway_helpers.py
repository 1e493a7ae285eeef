"""Helpers for the gateway's tests through HTTP: demo departments, users and the access events recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

from govshare_stack.front_door import FrontDoor

from gateway.door_conf import DoorLayout

PASSWORD = "Str0ng-Passw0rd!"


def uscc(body17: str) -> str:
    from govshare_common.identifiers import uscc_check_char

    return body17 + uscc_check_char(body17)


GONG_AN = uscc("11320404014000001")  # 公安局
SHI_JIAN = uscc("11320404014000002")  # 市场监管局


def bearer(token: str, **extra: str) -> dict[str, str]:
    """Headers of a call made with `token` (and any other headers given)."""
    return {"Authorization": f"Bearer {token}", **extra}


async def admin_headers(p: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {await p.token()}"}


async def setup_department(http: Any, admin: dict[str, str], code: str, name: str, *, filed: bool = True) -> None:
    r = await http.post(
        "/api/v1/identity/departments", json={"code": code, "name": name, "level": "district"}, headers=admin
    )
    assert r.status_code == 201, r.text
    if filed:
        r = await http.post(
            f"/api/v1/identity/departments/{code}/filing",
            json={
                "signed_by": "张主任",
                "signed_at": "2026-11-01T09:00:00+08:00",
                "commitment": "遵守共享交换规则承诺书",
            },
            headers=admin,
        )
        assert r.status_code == 200, r.text


async def client_token(http: Any, client_id: str, secret: str) -> str:
    r = await http.post(
        "/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def access_events(gateway_app: Any) -> list[dict[str, Any]]:
    """The gateway.access events in the outbox, once every line nginx has written is shipped."""
    await gateway_app.state.access_shipper.drain()
    async with gateway_app.state.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT data FROM outbox WHERE type = 'gateway.access' ORDER BY id"))
        return [r[0] for r in rows]


async def department_user(p: Any, http: Any, admin: dict[str, str], code: str, username: str, roles: list[str]) -> str:
    """A user of department `code` with `roles`; returns its access token."""
    r = await http.post(
        "/api/v1/identity/users",
        json={
            "username": username,
            "display_name": username,
            "department_code": code,
            "password": PASSWORD,
            "roles": roles,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return str(await p.token(username, PASSWORD))


def door_layout(tmp: Path, port: int, gateway_url: str, service_urls: Any, **overrides: Any) -> DoorLayout:
    """nginx in front of a test's services, writing its access lines where the gateway's settings read them
    (`access_journal_dir` = tmp/journal/door-access)."""
    return DoorLayout(
        listen_port=port,
        gateway_url=gateway_url,
        service_urls=dict(service_urls),
        access_log=tmp / "journal" / "door-access" / "current.jsonl",
        error_log=tmp / "door-error.log",
        worker_processes=1,
        **overrides,
    )


@contextmanager
def running_door(layout: DoorLayout) -> Iterator[FrontDoor]:
    door = FrontDoor(layout)
    door.start()
    try:
        yield door
    finally:
        door.stop()
