"""audit-svc with the real gateway: every gateway.access (allowed or denied) reaches the chained log, an
auditor traces a person's ID number through the gateway, and the stored log holds only its hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from govshare_common.identifiers import uscc_check_char
from govshare_common.testing import eventually
from govshare_common.workdays import china_today

PASSWORD = "Str0ng-Passw0rd!"
PERSON = "11010519491231002X"
OFFICE = "11320404MB1234500" + uscc_check_char("11320404MB1234500")
SAMR = "11320404MB1234502" + uscc_check_char("11320404MB1234502")


async def _login(http: Any, username: str) -> dict[str, str]:
    r = await http.post("/auth/token", data={"grant_type": "password", "username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_gateway_accesses_are_chained_and_an_auditor_traces_an_id_through_the_gateway(platform) -> None:
    async with platform("gateway", "audit") as p:
        admin = {"Authorization": f"Bearer {await p.token()}"}
        async with p.client() as http:
            for code, name in ((OFFICE, "大数据管理中心"), (SAMR, "市场监管局")):
                r = await http.post(
                    "/api/v1/identity/departments",
                    json={"code": code, "name": name, "level": "district"},
                    headers=admin,
                )
                assert r.status_code == 201, r.text
                r = await http.post(
                    f"/api/v1/identity/departments/{code}/filing",
                    json={
                        "signed_by": "张主任",
                        "signed_at": "2025-11-01T09:00:00+08:00",
                        "commitment": "遵守共享交换规则承诺书",
                    },
                    headers=admin,
                )
                assert r.status_code == 200, r.text
            for username, dept, roles in (("auditor1", OFFICE, ["auditor"]), ("samr1", SAMR, ["dept_admin"])):
                r = await http.post(
                    "/api/v1/identity/users",
                    json={
                        "username": username,
                        "display_name": username,
                        "department_code": dept,
                        "roles": roles,
                        "password": PASSWORD,
                    },
                    headers=admin,
                )
                assert r.status_code == 201, r.text
            auditor, samr = await _login(http, "auditor1"), await _login(http, "samr1")

            # A department asks for a person's record without a grant: refused at the door, and logged.
            r = await http.get(
                "/api/v1/exchange/resources/101001%2F000001/records",
                params={"subject": PERSON},
                headers={**samr, "X-Govshare-Purpose": "data_verification"},
            )
            assert r.status_code == 403
            # A department may not read the audit area; the platform office may not either.
            assert (await http.get("/api/v1/audit/verify", headers=samr)).status_code == 403
            assert (await http.get("/api/v1/audit/verify", headers=admin)).status_code == 403

            async def traced() -> Any:
                r = await http.post("/api/v1/audit/trace/subject", json={"identifier": PERSON}, headers=auditor)
                assert r.status_code == 200, r.text
                return r.json() if r.json()["total"] else None

            found = await eventually(traced)
            (hit,) = found["items"]
            assert hit["type"] == "gateway.access" and hit["data"]["department"] == SAMR
            assert hit["data"]["outcome"] == "denied" and hit["data"]["resource"] == "101001/000001"

            # The departments the gateway registered are known to supervision by name.
            report = await http.get(
                "/api/v1/supervision/reports/yearly",
                params={"year": china_today(datetime.now(UTC)).year},
                headers=auditor,
            )
            assert report.status_code == 200, report.text
            names = {d["department_code"]: d["department_name"] for d in report.json()["departments"]}
            assert names.get(SAMR) == "市场监管局"

            verified = (await http.get("/api/v1/audit/verify", headers=auditor)).json()
            assert verified["ok"] is True and verified["checked"] >= 5

        async with p.apps["audit"].state.db.engine.connect() as conn:
            plain = (
                await conn.execute(
                    text("SELECT count(*) FROM audit_entry WHERE position(convert_to(:id, 'UTF8') in body) > 0"),
                    {"id": PERSON},
                )
            ).scalar_one()
            refusals = (
                await conn.execute(text("SELECT count(*) FROM audit_entry WHERE type = 'gateway.access'"))
            ).scalar_one()
        assert plain == 0 and refusals >= 3
