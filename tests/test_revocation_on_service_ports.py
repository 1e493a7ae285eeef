"""A service reached on its own port refuses what the door refuses: ended sessions, disabled users and
departments (issue 11, point 6)."""

from __future__ import annotations

from typing import Any

import httpx

from govshare_common.identifiers import uscc_check_char
from govshare_common.testing import eventually, serve

RESOURCES = "/api/v1/catalog/resources"
AUDIT_NOTICES = "/api/v1/supervision/notices"
PASSWORD = "Str0ng-Passw0rd!"
GONG_AN = "11320404014000001" + uscc_check_char("11320404014000001")  # 公安局


async def _answers(http: httpx.AsyncClient, headers: dict[str, str], status: int) -> bool:
    r = await http.get(RESOURCES, headers=headers)
    return r.status_code == status and (status != 401 or r.json()["code"] == "token_revoked")


async def _status(http: httpx.AsyncClient, path: str, headers: dict[str, str], status: int) -> bool:
    return (await http.get(path, headers=headers)).status_code == status


async def _user_token(http: httpx.AsyncClient, admin: dict[str, str], username: str) -> tuple[str, dict[str, str]]:
    created = await http.post(
        "/api/v1/identity/users",
        json={
            "username": username,
            "display_name": "测试人员",
            "department_code": GONG_AN,
            "roles": ["dept_reviewer"],
            "password": PASSWORD,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    form = {"grant_type": "password", "username": username, "password": PASSWORD}
    token = (await http.post("/auth/token", data=form)).json()["access_token"]
    return created.json()["id"], {"Authorization": f"Bearer {token}"}


async def test_a_logged_out_token_is_refused_on_the_service_port(platform: Any) -> None:
    async with (
        platform("gateway", "catalog", "audit") as p,
        p.client() as door,
        p.client("catalog") as port,
        p.client("audit") as audit_port,
    ):
        bearer = {"Authorization": f"Bearer {await p.token()}"}
        assert (await port.get(RESOURCES, headers=bearer)).status_code == 200  # accepted before logout
        assert (await audit_port.get(AUDIT_NOTICES, headers=bearer)).status_code == 200

        assert (await door.post("/auth/logout", headers=bearer)).status_code == 200
        await eventually(lambda: _answers(port, bearer, 401), timeout=15.0)
        # audit-svc's connections write as its restricted role, which may keep this projection too.
        await eventually(lambda: _status(audit_port, AUDIT_NOTICES, bearer, 401), timeout=15.0)
        refused = await port.get(RESOURCES, headers={**bearer, "Accept-Language": "en"})
        assert refused.json()["details"] == {"reason": "session_ended"}
        assert "session has ended" in refused.json()["message"]
        # Another session of the same user is not touched.
        assert (await port.get(RESOURCES, headers={"Authorization": f"Bearer {await p.token()}"})).status_code == 200

        # A catalog-svc started afterwards (a restart, another replica) refuses it from its first call: the
        # projection is in its schema, not only in the memory of the process that consumed the event.
        from catalog_svc.app import create_app

        replica = create_app(p.apps["catalog"].state.settings)
        async with serve(replica) as url, httpx.AsyncClient(base_url=url) as second:
            first = await second.get(RESOURCES, headers=bearer)
            assert first.status_code == 401 and first.json()["code"] == "token_revoked"


async def test_a_disabled_users_and_a_disabled_departments_tokens_are_refused_on_the_service_port(
    platform: Any,
) -> None:
    async with platform("gateway", "catalog") as p, p.client() as door, p.client("catalog") as port:
        admin = {"Authorization": f"Bearer {await p.token()}"}
        department = {"code": GONG_AN, "name": "公安局", "level": "district"}
        assert (await door.post("/api/v1/identity/departments", json=department, headers=admin)).status_code == 201
        leaver_id, leaver = await _user_token(door, admin, "leaver")
        colleague_id, colleague = await _user_token(door, admin, "colleague")
        assert (await port.get(RESOURCES, headers=leaver)).status_code == 200

        r = await door.patch(f"/api/v1/identity/users/{leaver_id}", json={"status": "disabled"}, headers=admin)
        assert r.status_code == 200, r.text
        await eventually(lambda: _answers(port, leaver, 401), timeout=15.0)
        assert (await port.get(RESOURCES, headers=colleague)).status_code == 200

        r = await door.patch(f"/api/v1/identity/departments/{GONG_AN}", json={"status": "disabled"}, headers=admin)
        assert r.status_code == 200, r.text
        await eventually(lambda: _answers(port, colleague, 401), timeout=15.0)
        assert (await port.get(RESOURCES, headers=admin)).status_code == 200  # the platform office is elsewhere

        # Enabling again is honoured on the port as well.
        r = await door.patch(f"/api/v1/identity/users/{leaver_id}", json={"status": "active"}, headers=admin)
        assert r.status_code == 200, r.text
        await door.patch(f"/api/v1/identity/departments/{GONG_AN}", json={"status": "active"}, headers=admin)
        await eventually(lambda: _answers(port, leaver, 200), timeout=15.0)
        assert colleague_id != leaver_id
