"""Share requests behind the real gateway: a grant issued by request-svc opens the gateway's door to the
data route, and revocation and expiry close it again; departments see only their own requests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from gateway_helpers import bearer
from published_resources import demo_catalog
from sqlalchemy import text

from govshare_common.testing import eventually_equals
from govshare_stack.demo_steps import departments

from catalog_svc.demo import CIVIL, HRSS, PLATFORM_ADMIN, PSB
from gateway.demo import DEMO_PASSWORD
from request_svc.demo import seed as seed_requests

SHORT = {code: short for code, _name, short in departments()}


async def door_reason(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> str:
    """Why the gateway's door refused the data route, or "passed" when it let the call through."""
    r = await http.get(path, headers=headers)
    if r.status_code == 403 and r.json().get("code") == "no_grant":
        return str(r.json()["details"]["reason"])
    return "passed"


async def resource_code(http: httpx.AsyncClient, token: str, name: str) -> str:
    found = (await http.get("/api/v1/catalog/resources", params={"limit": 200}, headers=bearer(token))).json()
    return next(i["code"] for i in found["items"] if i["name"] == name)


async def learnt(p: Any, code: str) -> bool:
    async with p.apps["request"].state.db.engine.connect() as conn:
        return bool(
            (await conn.execute(text("SELECT count(*) FROM resource_projection WHERE code = :c"), {"c": code})).scalar()
        )


async def test_grant_opens_the_data_route_at_the_gateway_revocation_and_expiry_close_it_and_demo_seeds(
    platform,
) -> None:
    async with platform("gateway", "catalog", "request") as p, p.client() as http:
        tokens = await demo_catalog(p, http)
        consumer = tokens[HRSS.code]
        reviewer = await p.token(f"{SHORT[PSB.code]}_reviewer", DEMO_PASSWORD)
        code = await resource_code(http, consumer, "户籍迁移登记信息")  # conditional, held by 公安
        await eventually_equals(lambda: learnt(p, code), True, timeout=30.0)
        path = f"/api/v1/exchange/resources/{code.replace('/', '%2F')}/records"
        data_call = bearer(consumer, **{"X-Govshare-Purpose": "business_collaboration"})
        assert await door_reason(http, path, data_call) == "no_live_grant"

        body = {
            "resource_code": code,
            "items": ["GMSFHM", "XM", "QCD"],
            "purposes": ["business_collaboration"],
            "scope": "社保转移经办人员",
            "security_measures": "政务外网访问，全程留痕",
            "business_matter": "社会保险关系转移接续",
        }
        submitted = await http.post("/api/v1/requests", json=body, headers=bearer(consumer))
        assert submitted.status_code == 201, submitted.text
        rid = submitted.json()["id"]

        # The consumer cannot decide its own request; a third department cannot see it.
        own = await http.post(f"/api/v1/requests/{rid}/approve", json={}, headers=bearer(consumer))
        assert own.status_code == 403 and set(own.json()) == {"code", "message", "details", "trace_id"}
        civil = tokens[CIVIL.code]
        assert (await http.get(f"/api/v1/requests/{rid}", headers=bearer(civil))).status_code == 403
        assert (await http.get("/api/v1/requests", headers=bearer(civil))).json()["total"] == 0
        no_reason = await http.post(f"/api/v1/requests/{rid}/reject", json={}, headers=bearer(reviewer))
        assert no_reason.status_code == 422 and no_reason.json()["details"]["fields"][0]["field"] == "reason"

        approved = await http.post(
            f"/api/v1/requests/{rid}/approve", json={"items": ["XM", "QCD"]}, headers=bearer(reviewer)
        )
        assert approved.status_code == 200, approved.text
        grant_id = approved.json()["grant_id"]
        await eventually_equals(lambda: door_reason(http, path, data_call), "passed", timeout=30.0)
        wrong_purpose = bearer(consumer, **{"X-Govshare-Purpose": "work_reference"})
        assert await door_reason(http, path, wrong_purpose) == "purpose_not_granted"

        revoked = await http.post(
            f"/api/v1/grants/{grant_id}/revoke", json={"reason": "超出约定用途"}, headers=bearer(reviewer)
        )
        assert revoked.status_code == 200, revoked.text
        await eventually_equals(lambda: door_reason(http, path, data_call), "no_live_grant", timeout=30.0)

        # A grant that runs out: request-svc's job announces the expiry and the gateway's projection follows.
        until = datetime.now(UTC) + timedelta(seconds=10)  # the gateway learns of it first, on a busy machine too
        rid2 = (await http.post("/api/v1/requests", json=body, headers=bearer(consumer))).json()["id"]
        second = await http.post(
            f"/api/v1/requests/{rid2}/approve", json={"valid_until": until.isoformat()}, headers=bearer(reviewer)
        )
        grant2 = second.json()["grant_id"]
        await eventually_equals(lambda: door_reason(http, path, data_call), "passed", timeout=30.0)
        await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.2)
        assert await p.apps["request"].state.jobs.run_once("grant-expiry")
        await eventually_equals(lambda: projected_status(p, grant2), "expired", timeout=30.0)
        assert await door_reason(http, path, data_call) == "no_live_grant"
        listed = (await http.get("/api/v1/grants", headers=bearer(consumer))).json()
        assert {g["id"]: g["status"] for g in listed["items"]} == {grant_id: "revoked", grant2: "expired"}

        # The demo requests: every state a reviewer meets, seeded twice without duplicates.
        for name in ("户籍迁移登记信息", "最低生活保障对象信息", "刑事案件侦办信息"):
            await eventually_equals(lambda n=name: _learnt_name(p, n), True, timeout=30.0)
        await seed_requests(http, tokens)
        admin = bearer(tokens[PLATFORM_ADMIN])
        listed = (await http.get("/api/v1/requests", params={"limit": 200}, headers=admin)).json()
        states = {i["state"] for i in listed["items"]}
        assert states == {"submitted", "info_requested", "approved", "rejected", "escalated", "withdrawn"}
        first_total = listed["total"]
        assert any(i["state"] == "submitted" and i["due_date"] for i in listed["items"])
        # Every department that must answer finds its requests on its worklist, soonest deadline first.
        psb_worklist = (await http.get("/api/v1/requests/worklist", headers=bearer(tokens[PSB.code]))).json()
        dues = [i["due_date"] for i in psb_worklist["items"]]
        dated = [d for d in dues if d is not None]  # negotiation has no deadline: it comes last
        assert dated and dated == sorted(dated) and dues[: len(dated)] == dated
        await seed_requests(http, tokens)  # a second run adds nothing
        again = (await http.get("/api/v1/requests", params={"limit": 200}, headers=admin)).json()
        assert again["total"] == first_total
        grants = (await http.get("/api/v1/grants", headers=admin)).json()
        assert grants["total"] >= 3  # the two above and the demo's approval


async def projected_status(p: Any, grant_id: str) -> str | None:
    async with p.apps["gateway"].state.db.engine.connect() as conn:
        return (
            await conn.execute(text("SELECT status FROM grant_projection WHERE grant_id = :g"), {"g": grant_id})
        ).scalar()


async def _learnt_name(p: Any, name: str) -> bool:
    async with p.apps["request"].state.db.engine.connect() as conn:
        return bool(
            (await conn.execute(text("SELECT count(*) FROM resource_projection WHERE name = :n"), {"n": name})).scalar()
        )
