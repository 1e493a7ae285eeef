"""Beijing's rules through the real platform (seeds/004):

- Art.19 (`cite_source_required`): a consumer using shared data in a major decision cites the source and asks
  the provider's consent through the platform; the provider consents, or refuses with a reason; the
  evaluation counts both sides;
- Art.29 (`yearly_report_due` 11-30): the yearly report is due by the end of November, and Beijing asks for no
  monthly progress (`monthly_progress` off).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway_helpers import bearer
from published_resources import RESOURCE, publish
from sqlalchemy import text

from govshare_common.testing import eventually, eventually_equals
from govshare_stack.demo_steps import departments

from catalog_svc.demo import CIVIL, HRSS, PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities


async def test_beijing_major_decisions_cite_the_source_and_ask_consent_and_the_yearly_report_is_due_in_november(
    platform,
) -> None:
    async with platform("gateway", "catalog", "request", "audit", profile="beijing") as p, p.client() as http:
        admin_token = await p.token()
        await seed_identities(http, admin_token, departments())
        short = {code: s for code, _n, s in departments()}
        admin = bearer(admin_token)
        psb = bearer(await p.token(f"{short[PSB.code]}_admin", DEMO_PASSWORD))
        psb_reviewer = bearer(await p.token(f"{short[PSB.code]}_reviewer", DEMO_PASSWORD))
        hrss = bearer(await p.token(f"{short[HRSS.code]}_admin", DEMO_PASSWORD))
        civil = bearer(await p.token(f"{short[CIVIL.code]}_admin", DEMO_PASSWORD))
        code = await publish(http, RESOURCE, dept_admin=psb, platform_admin=admin)

        async def request_svc_knows() -> bool:
            async with p.apps["request"].state.db.engine.connect() as conn:
                q = text("SELECT count(*) FROM resource_projection WHERE code = :c")
                return bool((await conn.execute(q, {"c": code})).scalar())

        await eventually(request_svc_knows, timeout=15.0)
        application = {
            "resource_code": code,
            "items": ["XM", "HJDZ"],
            "purposes": ["work_reference"],
            "scope": "政策研究人员",
            "security_measures": "政务外网访问，全程留痕",
            "business_matter": "户籍制度改革政策研究",
        }
        rid = (await http.post("/api/v1/requests", json=application, headers=hrss)).json()["id"]
        approved = await http.post(f"/api/v1/requests/{rid}/approve", json={}, headers=psb_reviewer)
        assert approved.status_code == 200, approved.text
        grant_id = approved.json()["grant_id"]

        use = {
            "title": "全市户籍制度改革实施方案",
            "description": "以户籍人口分布数据测算落户指标",
            "source_citation": f"常州市公安局钟楼分局 信息资源 {code}（户籍人口登记信息）",
        }
        uncited = await http.post(
            f"/api/v1/grants/{grant_id}/major-decisions", json={**use, "source_citation": ""}, headers=hrss
        )
        assert uncited.status_code == 422
        not_consumer = await http.post(f"/api/v1/grants/{grant_id}/major-decisions", json=use, headers=civil)
        assert not_consumer.status_code == 403
        asked = await http.post(f"/api/v1/grants/{grant_id}/major-decisions", json=use, headers=hrss)
        assert asked.status_code == 201, asked.text
        first = asked.json()
        assert (first["state"], first["provider_code"], first["source_citation"]) == (
            "pending",
            PSB.code,
            use["source_citation"],
        )
        pending = (await http.get("/api/v1/grants/major-decisions", headers=psb_reviewer)).json()
        assert [d["id"] for d in pending["items"]] == [first["id"]]
        assert (await http.get("/api/v1/grants/major-decisions", headers=civil)).json()["total"] == 0

        answer = f"/api/v1/grants/major-decisions/{first['id']}/answer"
        assert (await http.post(answer, json={"decision": "consent"}, headers=hrss)).status_code == 403
        unreasoned = await http.post(answer, json={"decision": "refuse"}, headers=psb_reviewer)
        assert unreasoned.status_code == 422
        refused = await http.post(
            answer, json={"decision": "refuse", "reason": "测算口径与登记数据不一致"}, headers=psb_reviewer
        )
        assert (refused.json()["state"], refused.json()["reason"]) == ("refused", "测算口径与登记数据不一致")
        again = await http.post(answer, json={"decision": "consent"}, headers=psb_reviewer)
        assert again.status_code == 409
        second = (await http.post(f"/api/v1/grants/{grant_id}/major-decisions", json=use, headers=hrss)).json()
        consented = await http.post(
            f"/api/v1/grants/major-decisions/{second['id']}/answer", json={"decision": "consent"}, headers=psb_reviewer
        )
        assert consented.json()["state"] == "consented"

        async def counted() -> tuple[int, int]:
            year = datetime.now(UTC).year
            r = await http.get("/api/v1/supervision/evaluation", params={"year": year}, headers=admin)
            by = {d["department_code"]: d["indicators"] for d in r.json()["departments"]}
            return by.get(HRSS.code, {}).get("major_decisions_cited", 0), by.get(PSB.code, {}).get(
                "major_decisions_answered", 0
            )

        await eventually_equals(counted, (2, 2), timeout=15.0)

        # Art.29: the yearly report by the end of November; no monthly progress in Beijing.
        due: dict[str, Any] = (
            await http.get("/api/v1/supervision/department-reports/due", params={"year": 2026}, headers=psb)
        ).json()
        assert {(r["kind"], r["due_on"]) for r in due["items"]} == {("yearly", "2026-11-30")}
        monthly = await http.post(
            "/api/v1/supervision/department-reports",
            json={"kind": "monthly", "year": 2026, "month": 11, "content": "进展"},
            headers=psb,
        )
        assert monthly.status_code == 409 and monthly.json()["code"] == "report_not_in_profile"
