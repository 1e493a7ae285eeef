"""The identity lists the console pages through are filterable: by a text in the name or code, by status, and
(for the platform office) by department; a department admin still sees only its own department."""

from __future__ import annotations

from gateway_helpers import GONG_AN, SHI_JIAN, admin_headers, department_user, setup_department


async def test_departments_users_and_clients_narrow_by_text_status_and_department(platform) -> None:
    async with platform("gateway") as p, p.client() as http:
        admin = await admin_headers(p)
        await setup_department(http, admin, GONG_AN, "公安局")
        await setup_department(http, admin, SHI_JIAN, "市场监管局")
        gaj = await department_user(p, http, admin, GONG_AN, "gaj_li", ["dept_admin"])
        await department_user(p, http, admin, SHI_JIAN, "scjg_wang", ["dept_admin"])
        r = await http.patch(f"/api/v1/identity/departments/{SHI_JIAN}", json={"status": "disabled"}, headers=admin)
        assert r.status_code == 200, r.text

        async def codes(path: str, headers: dict[str, str], **query: str) -> list[str]:
            r = await http.get(path, params=query, headers=headers)
            assert r.status_code == 200, r.text
            return [i.get("code") or i.get("username") for i in r.json()["items"]]

        assert await codes("/api/v1/identity/departments", admin, q="监管") == [SHI_JIAN]
        assert await codes("/api/v1/identity/departments", admin, q=GONG_AN) == [GONG_AN]
        assert await codes("/api/v1/identity/departments", admin, status="disabled") == [SHI_JIAN]
        assert await codes("/api/v1/identity/users", admin, q="gaj_") == ["gaj_li"]
        assert await codes("/api/v1/identity/users", admin, department_code=SHI_JIAN) == ["scjg_wang"]
        # A department admin asking for another department still gets only its own.
        own = {"Authorization": f"Bearer {gaj}"}
        assert await codes("/api/v1/identity/users", own, department_code=SHI_JIAN) == ["gaj_li"]
        bad = await http.get("/api/v1/identity/users", params={"status": "sleeping"}, headers=admin)
        assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
