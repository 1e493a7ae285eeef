"""The two cross-service rules that used to disagree, through the real platform under Xiangyang's profile
(not_shared data goes straight to the coordinator, 市信息化办, who answers in 10 working days and binds):

- "may this data flow" is one rule: the door and exchange-svc give the same answer for the same call, and a
  coordinator's binding approval of not_shared data lets the data flow in both;
- a late answer is charged to whoever owed it: the provider during its review, the platform office at the
  coordination step — the overdue fact, the rectification notice and the score deduction alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from gateway_helpers import bearer
from published_resources import RESOURCE, publish
from sqlalchemy import text

from govshare_common.clock import FrozenClock
from govshare_common.sharing import PLATFORM_OFFICE
from govshare_common.testing import eventually, eventually_equals
from govshare_stack.demo_steps import departments

from catalog_svc.demo import HRSS, PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

ZHANG = "11010519491231002X"
CASE_FILES = {
    **RESOURCE,
    "name": "刑事案件当事人信息",
    "summary": "刑事案件当事人的身份信息。",
    "share_type": "not_shared",
    "share_conditions": None,
    "legal_basis": "《中华人民共和国刑事诉讼法》第一百五十二条",
}
APPLICATION = {
    "items": ["GMSFHM", "XM"],
    "purposes": ["data_verification"],
    "scope": "社保待遇资格核验经办人员",
    "security_measures": "政务外网访问，全程留痕",
    "business_matter": "社会保险待遇资格认证",
}


async def answer(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> str:
    """ "served" when the records came back, else the reason of the refusal."""
    r = await http.get(path, params={"subject": ZHANG}, headers=headers)
    if r.status_code == 200:
        return "served"
    assert set(r.json()) == {"code", "message", "details", "trace_id"}, r.text
    return str(r.json()["details"].get("reason", r.json()["code"]))


async def test_one_flow_rule_and_overdue_charged_to_whoever_owed_the_answer(platform) -> None:
    weeks_ago = datetime.now(UTC) - timedelta(days=21)
    request_clock = FrozenClock(weeks_ago)  # request-svc lives three weeks back, so its deadlines run out
    async with (
        platform(
            "gateway", "catalog", "request", "exchange", "audit", profile="xiangyang", clocks={"request": request_clock}
        ) as p,
        p.client() as http,
        p.client("exchange") as direct,
    ):
        admin_token = await p.token()
        await seed_identities(http, admin_token, departments())
        short = {code: s for code, _n, s in departments()}
        admin = bearer(admin_token)
        psb_admin = bearer(await p.token(f"{short[PSB.code]}_admin", DEMO_PASSWORD))
        consumer = await p.token(f"{short[HRSS.code]}_admin", DEMO_PASSWORD)

        code = await publish(http, CASE_FILES, dept_admin=psb_admin, platform_admin=admin)
        late_code = await publish(
            http, {**RESOURCE, "name": "户籍变更登记信息"}, dept_admin=psb_admin, platform_admin=admin
        )
        records = f"/api/v1/exchange/resources/{quote(code, safe='')}/records"
        row = {"GMSFHM": ZHANG, "XM": "张三", "HJDZ": "江苏省常州市钟楼区南大街1号", "MZ": "01"}

        async def ingested() -> bool:
            r = await http.post(
                f"/api/v1/exchange/resources/{quote(code, safe='')}/batches",
                params={"batch_id": "b1"},
                content=(json.dumps(row, ensure_ascii=False) + "\n").encode(),
                headers=psb_admin,
            )
            return r.status_code == 200

        await eventually(ingested, timeout=15.0)

        # Before any decision: both sides refuse, for the same reasons.
        cases = {
            "no purpose": bearer(consumer),
            "unknown purpose": bearer(consumer, **{"X-Govshare-Purpose": "curiosity"}),
            "stated purpose": bearer(consumer, **{"X-Govshare-Purpose": "data_verification"}),
            "other purpose": bearer(consumer, **{"X-Govshare-Purpose": "work_reference"}),
        }
        before = {name: await answer(http, records, h) for name, h in cases.items()}
        assert before == {
            "no purpose": "purpose_required",
            "unknown purpose": "purpose_unknown",
            "stated purpose": "not_shared",
            "other purpose": "not_shared",
        }
        assert {name: await answer(direct, records, h) for name, h in cases.items()} == before

        letter = "关于申请协调共享刑事案件当事人信息的函：为核验社保待遇资格……"

        async def submitted(resource: str, **extra: str) -> dict[str, Any] | None:
            body = {"resource_code": resource, **APPLICATION, **extra}
            r = await http.post("/api/v1/requests", json=body, headers=bearer(consumer))
            return r.json() if r.status_code == 201 else None  # once request-svc has read the catalog's events

        # Straight to 市信息化办, which takes a written application (Art.10, the step's written_application).
        async def request_svc_knows() -> bool:
            async with p.apps["request"].state.db.engine.connect() as conn:
                q = text("SELECT count(*) FROM resource_projection WHERE code = :c")
                return bool((await conn.execute(q, {"c": code})).scalar())

        await eventually(request_svc_knows, timeout=15.0)
        unwritten = await http.post(
            "/api/v1/requests", json={"resource_code": code, **APPLICATION}, headers=bearer(consumer)
        )
        assert (
            unwritten.status_code == 422 and unwritten.json()["details"]["fields"][0]["field"] == "written_application"
        )
        coordinated = await submitted(code, written_application=letter)
        assert coordinated is not None
        assert coordinated["state"] == "escalated"  # not_shared: straight to 市信息化办
        approved = await http.post(f"/api/v1/requests/{coordinated['id']}/approve", json={}, headers=admin)
        assert approved.status_code == 200, approved.text

        # The coordinator's approval binds: the data flows through the door and from exchange-svc alike.
        after = {
            "no purpose": "purpose_required",
            "unknown purpose": "purpose_unknown",
            "stated purpose": "served",
            "other purpose": "purpose_not_granted",
        }
        await eventually_equals(lambda: answer(http, records, cases["stated purpose"]), "served", timeout=15.0)
        assert {name: await answer(http, records, h) for name, h in cases.items()} == after
        assert {name: await answer(direct, records, h) for name, h in cases.items()} == after
        served = (await http.get(records, params={"subject": ZHANG}, headers=cases["stated purpose"])).json()
        assert set(served["items"][0]["data"]) == {"GMSFHM", "XM"}  # the granted items, no more

        # Two requests nobody answers: one the provider owes (conditional), one the coordinator owes (not_shared).
        provider_late = await eventually(lambda: submitted(late_code), timeout=15.0)
        office_late = await submitted(code, written_application=letter)
        assert provider_late["state"] == "submitted" and office_late["state"] == "escalated"
        request_clock.set(datetime.now(UTC))
        assert await p.apps["request"].state.jobs.run_once("request-deadlines")

        async def notices() -> dict[str, str]:
            r = await http.get("/api/v1/supervision/notices", params={"violation": "request_overdue"}, headers=admin)
            return {n["reference"]: n["department_code"] for n in r.json()["items"]}

        charged = {provider_late["id"]: PSB.code, office_late["id"]: PLATFORM_OFFICE}
        await eventually_equals(notices, charged, timeout=15.0)

        year = (
            weeks_ago.year
            if weeks_ago.month == 12 and datetime.now(UTC).year > weeks_ago.year
            else datetime.now(UTC).year
        )
        report = (await http.get("/api/v1/supervision/evaluation", params={"year": year}, headers=admin)).json()
        overdue = {d["department_code"]: d["indicators"]["requests_overdue"] for d in report["departments"]}
        assert overdue[PSB.code] == 1 and overdue[PLATFORM_OFFICE] == 1
        office = next(d for d in report["departments"] if d["department_code"] == PLATFORM_OFFICE)
        assert office["department_name"] == "平台管理机构" and office["score"] < 100

        # The office answers its own notice; the provider's per-provider overdue count holds only its own lapse.
        notice_id = next(
            n["id"]
            for n in (await http.get("/api/v1/supervision/notices", headers=admin)).json()["items"]
            if n["reference"] == office_late["id"]
        )
        answered = await http.post(
            f"/api/v1/supervision/notices/{notice_id}/answer", json={"answer": "已安排专人协调办理。"}, headers=admin
        )
        assert answered.status_code == 200, answered.text
        summary = (await http.get("/api/v1/requests/overdue-summary", headers=admin)).json()
        assert {s["provider_code"]: s["overdue_requests"] for s in summary["items"]} == {PSB.code: 1}
        async with p.apps["audit"].state.db.engine.connect() as conn:
            kinds = (
                await conn.execute(text("SELECT department FROM supervision_fact WHERE kind = 'request_overdue'"))
            ).all()
        assert sorted(k.department for k in kinds) == sorted([PSB.code, PLATFORM_OFFICE])
