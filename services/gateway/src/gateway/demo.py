"""The demo jurisdiction's identities: a district's departments, filed, with their users and clients; and a
jurisdiction hosted beside it (肥城市, with its own rules).

Seeded through the public API like any administrator would; running it twice changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx

from govshare_common.identifiers import uscc_check_char


def _code(body17: str) -> str:
    return body17 + uscc_check_char(body17)


# (code, name, short name used in usernames)
DEMO_DEPARTMENTS: list[tuple[str, str, str]] = [
    (_code("11320404014160001"), "钟楼区大数据管理中心", "dsj"),
    (_code("11320404014160002"), "钟楼区公安分局", "gaj"),
    (_code("11320404014160003"), "钟楼区市场监督管理局", "scjg"),
    (_code("11320404014160004"), "钟楼区人力资源和社会保障局", "rsj"),
    (_code("11320404014160005"), "钟楼区民政局", "mzj"),
]
DEMO_PASSWORD = "Demo-Passw0rd-2026"


async def seed(
    http: httpx.AsyncClient,
    admin_token: str,
    departments: list[tuple[str, str, str]] | None = None,
    *,
    auditor: bool = True,
) -> dict[str, Any]:
    """Create what is missing; return the credentials (users' passwords, clients' secrets) made this time.

    `departments` is (code, name, short ASCII name for usernames); the platform office comes first.
    """
    departments = departments or DEMO_DEPARTMENTS
    admin = {"Authorization": f"Bearer {admin_token}"}
    credentials: dict[str, Any] = {"users": {}, "clients": {}}
    existing_clients = {
        c["name"]
        for c in (await http.get("/api/v1/identity/clients", params={"limit": 500}, headers=admin)).json()["items"]
    }
    for code, name, short in departments:
        r = await http.post(
            "/api/v1/identity/departments", json={"code": code, "name": name, "level": "district"}, headers=admin
        )
        if r.status_code not in (201, 409):
            r.raise_for_status()
        r = await http.post(
            f"/api/v1/identity/departments/{code}/filing",
            json={
                "signed_by": f"{name}首席数据官",
                "signed_at": "2026-11-02T09:00:00+08:00",
                "commitment": "政务信息资源共享承诺书（演示）",
            },
            headers=admin,
        )
        r.raise_for_status()
        for suffix, roles, label in (
            ("admin", ["dept_admin"], "信息资源管理员"),
            ("reviewer", ["dept_reviewer"], "共享审核员"),
        ):
            username = f"{short}_{suffix}"
            r = await http.post(
                "/api/v1/identity/users",
                json={
                    "username": username,
                    "display_name": f"{name}{label}",
                    "department_code": code,
                    "roles": roles,
                    "password": DEMO_PASSWORD,
                },
                headers=admin,
            )
            if r.status_code == 201:
                credentials["users"][username] = {"password": DEMO_PASSWORD, "department": name, "roles": roles}
            elif r.status_code != 409:
                r.raise_for_status()
        client_name = f"{name}业务系统"
        if client_name not in existing_clients:
            r = await http.post(
                "/api/v1/identity/clients", json={"name": client_name, "department_code": code}, headers=admin
            )
            r.raise_for_status()
            body = r.json()
            credentials["clients"][client_name] = {
                "client_id": body["client_id"],
                "client_secret": body["client_secret"],
                "department": name,
            }
    if not auditor:
        return credentials
    r = await http.post(
        "/api/v1/identity/users",
        json={
            "username": "auditor",
            "display_name": "平台审计员",
            "department_code": departments[0][0],
            "roles": ["auditor"],
            "password": DEMO_PASSWORD,
        },
        headers=admin,
    )
    if r.status_code == 201:
        credentials["users"]["auditor"] = {
            "password": DEMO_PASSWORD,
            "department": departments[0][1],
            "roles": ["auditor"],
        }
    return credentials


# A jurisdiction without a platform of its own, hosted here with its own rules (001 Art.6: 肥城市 uses 泰安市's
# platform): (division code, name, profile) and its departments as above.
HOSTED_JURISDICTION = ("370983", "肥城市", "feicheng")
HOSTED_DEPARTMENTS: list[tuple[str, str, str]] = [(_code("11370983004160001"), "肥城市公安局", "fc_gaj")]


async def seed_hosted(http: httpx.AsyncClient, admin_token: str) -> dict[str, Any]:
    """The hosted jurisdiction and its departments, filed, with their users; nothing where the platform runs
    under that jurisdiction's own profile (it then is the host, not hosted). Returns the credentials made."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    code, name, profile = HOSTED_JURISDICTION
    known = await http.get("/api/v1/identity/jurisdictions", headers=admin)
    known.raise_for_status()
    if known.json()["platform"]["profile"] == profile:
        return {"users": {}, "clients": {}}
    r = await http.post(
        "/api/v1/identity/jurisdictions", json={"code": code, "name": name, "profile": profile}, headers=admin
    )
    if r.status_code not in (201, 409):
        r.raise_for_status()
    for dept_code, dept_name, _short in HOSTED_DEPARTMENTS:
        r = await http.post(
            "/api/v1/identity/departments",
            json={"code": dept_code, "name": dept_name, "level": "county", "jurisdiction_code": code},
            headers=admin,
        )
        if r.status_code not in (201, 409):
            r.raise_for_status()
    return await seed(http, admin_token, HOSTED_DEPARTMENTS, auditor=False)
