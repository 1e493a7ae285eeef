"""Hosted jurisdictions (issue 16 item 6): Feicheng runs no platform of its own and uses the upper one (001 Art.6).
On one platform, a department of the hosted jurisdiction is handled under Feicheng's profile (10 working days,
negotiation then the city office, 001 Art.17) and the host's own departments under the host's (here Zhonglou's:
5 working days, negotiation only, 000 Art.18) — deadlines on the real statutory calendar. Moving a department
to another jurisdiction moves its new requests to that jurisdiction's rules; a request keeps the rules it was
submitted under. Registering is the platform office's, refused in the error shape and evented."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import chinese_calendar
import httpx
from gateway_helpers import PASSWORD, bearer, uscc
from published_resources import RESOURCE, publish
from sqlalchemy import text

from govshare_common.clock import FrozenClock
from govshare_common.testing import eventually, eventually_equals
from govshare_common.workdays import CHINA_TZ
from govshare_stack.demo import DemoContext
from govshare_stack.demo_steps import departments, hosted_jurisdiction, identities

from catalog_svc.demo import HRSS, PSB
from gateway.demo import DEMO_PASSWORD, HOSTED_DEPARTMENTS
from gateway.demo import seed as seed_identities

FEICHENG = {"code": "370983", "name": "肥城市", "profile": "feicheng"}
FC_PSB = uscc("11370983004100001")  # 肥城市公安局, a department of the hosted jurisdiction
# Monday 28 September 2026, China time: both deadlines run over the National Day holiday and its make-up Saturday.
SUBMITTED_ON = date(2026, 9, 28)
APPLICATION = {
    "items": ["XM"],
    "purposes": ["data_verification"],
    "scope": "社保经办人员",
    "security_measures": "政务外网访问，全程留痕",
    "business_matter": "参保人员身份核验",
}


def nth_working_day_after(start: date, n: int) -> date:
    """An independent oracle: the statutory calendar as chinesecalendar publishes it."""
    d, counted = start, 0
    while counted < n:
        d += timedelta(days=1)
        counted += chinese_calendar.is_workday(d)
    return d


def refused(r: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["message"] and body["trace_id"], body
    if field is not None:
        assert [f["field"] for f in body["details"]["fields"]] == [field], body


async def outbox(app: Any, type_: str) -> list[dict[str, Any]]:
    async with app.state.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT data FROM outbox WHERE type = :t ORDER BY id"), {"t": type_})
        return [dict(r.data) for r in rows]


async def test_a_hosted_jurisdictions_requests_run_under_its_own_profile_on_the_host_platform(platform) -> None:
    clock = FrozenClock(datetime(2026, 9, 28, 10, 0, tzinfo=CHINA_TZ))
    async with (
        platform("gateway", "catalog", "request", profile="zhonglou", clocks={"request": clock}) as p,
        p.client() as http,
    ):
        admin_token = await p.token()
        admin = bearer(admin_token)
        await seed_identities(http, admin_token, departments())
        short = {code: s for code, _n, s in departments()}
        psb = bearer(await p.token(f"{short[PSB.code]}_admin", DEMO_PASSWORD))
        hrss = bearer(await p.token(f"{short[HRSS.code]}_admin", DEMO_PASSWORD))

        # --- the platform office registers the hosted jurisdiction; bad input is refused and leaves nothing ---
        jurisdictions = "/api/v1/identity/jurisdictions"
        refused(
            await http.post(jurisdictions, json={**FEICHENG, "code": "37098"}, headers=admin),
            422,
            "validation_failed",
            "code",
        )
        own = await http.post(jurisdictions, json={**FEICHENG, "profile": "zhonglou"}, headers=admin)
        refused(own, 422, "validation_failed", "profile")
        assert "feicheng" in own.json()["details"]["allowed"] and "zhonglou" not in own.json()["details"]["allowed"]
        refused(
            await http.post(jurisdictions, json={**FEICHENG, "profile": "taishan"}, headers=admin),
            422,
            "validation_failed",
            "profile",
        )
        blank = await http.post(jurisdictions, json={**FEICHENG, "name": "   "}, headers=admin)
        refused(blank, 422, "validation_failed", "name")
        refused(await http.post(jurisdictions, json=FEICHENG, headers=psb), 403, "forbidden")
        assert (await http.get(jurisdictions, headers=admin)).json()["items"] == []
        made = await http.post(jurisdictions, json=FEICHENG, headers=admin)
        assert made.status_code == 201, made.text
        refused(await http.post(jurisdictions, json=FEICHENG, headers=admin), 409, "conflict")
        listed = (await http.get(jurisdictions, headers=admin)).json()
        assert listed["platform"] == {"name": "常州市钟楼区", "profile": "zhonglou"}
        assert [(j["code"], j["name"], j["profile"], j["profile_display_name"]) for j in listed["items"]] == [
            ("370983", "肥城市", "feicheng", "肥城市")
        ]
        (registered,) = await outbox(p.apps["gateway"], "identity.jurisdiction.registered")
        assert registered["code"] == "370983" and registered["profile"] == "feicheng"

        # --- a department registered under it: an unknown jurisdiction is refused, nothing registered ---
        fc_body = {"code": FC_PSB, "name": "肥城市公安局", "level": "county", "jurisdiction_code": "370983"}
        departments_path = "/api/v1/identity/departments"
        stray = await http.post(departments_path, json={**fc_body, "jurisdiction_code": "370982"}, headers=admin)
        refused(stray, 422, "validation_failed", "jurisdiction_code")
        assert (await http.get(departments_path, params={"q": FC_PSB}, headers=admin)).json()["total"] == 0
        r = await http.post(departments_path, json=fc_body, headers=admin)
        assert r.status_code == 201, r.text
        assert (r.json()["jurisdiction_name"], r.json()["jurisdiction_profile"]) == ("肥城市", "feicheng")
        shown = (await http.get(departments_path, params={"q": FC_PSB}, headers=admin)).json()["items"]
        assert [(d["jurisdiction_code"], d["jurisdiction_name"]) for d in shown] == [("370983", "肥城市")]
        host_row = (await http.get(departments_path, params={"q": PSB.code}, headers=admin)).json()["items"]
        assert [d["jurisdiction_code"] for d in host_row] == [None]
        user = {"display_name": "肥城市公安局信息资源管理员", "department_code": FC_PSB, "password": PASSWORD}
        r = await http.post(
            "/api/v1/identity/users", json={**user, "username": "fc_gaj_admin", "roles": ["dept_admin"]}, headers=admin
        )
        assert r.status_code == 201, r.text
        fc = bearer(await p.token("fc_gaj_admin", PASSWORD))

        # --- one resource of each provider, and a host department applies for both ---
        fc_resource = {
            **RESOURCE,
            "name": "肥城市户籍人口登记信息",
            "provider_code": FC_PSB,
            "provider_name": "肥城市公安局",
        }
        fc_code = await publish(http, fc_resource, dept_admin=fc, platform_admin=admin)
        host_code = await publish(http, RESOURCE, dept_admin=psb, platform_admin=admin)

        async def apply(code: str) -> dict[str, Any]:
            async def submitted() -> dict[str, Any] | None:
                r = await http.post("/api/v1/requests", json={"resource_code": code, **APPLICATION}, headers=hrss)
                return r.json() if r.status_code == 201 else None  # once request-svc has read the catalog's events

            return await eventually(submitted, timeout=15.0)

        async def rules_of(department: str) -> dict[str, Any]:
            r = await http.get("/api/v1/requests/rules", params={"department_code": department}, headers=hrss)
            assert r.status_code == 200, r.text
            return dict(r.json())

        async def profile_of(department: str) -> str:
            return str((await rules_of(department))["profile"])

        await eventually_equals(lambda: profile_of(FC_PSB), "feicheng", timeout=15.0)
        fc_rules = await rules_of(FC_PSB)
        assert fc_rules["hosted"] and fc_rules["reply_deadline_wd"] == 10
        assert [s["name"] for s in fc_rules["escalation"]] == ["negotiation", "coordinator"]
        host_rules = await rules_of(PSB.code)
        assert not host_rules["hosted"] and host_rules["reply_deadline_wd"] == 5
        assert [s["name"] for s in host_rules["escalation"]] == ["negotiation"]

        hosted = await apply(fc_code)
        own_dept = await apply(host_code)
        assert hosted["submitted_on"] == own_dept["submitted_on"] == SUBMITTED_ON.isoformat()
        assert hosted["due_date"] == nth_working_day_after(SUBMITTED_ON, 10).isoformat() == "2026-10-16"
        assert own_dept["due_date"] == nth_working_day_after(SUBMITTED_ON, 5).isoformat() == "2026-10-10"
        assert (hosted["profile"], hosted["profile_display_name"]) == ("feicheng", "肥城市")
        assert own_dept["profile"] == "zhonglou"
        submitted_events = {e["request_id"]: e["profile"] for e in await outbox(p.apps["request"], "request.submitted")}
        assert submitted_events == {hosted["id"]: "feicheng", own_dept["id"]: "zhonglou"}

        # --- escalation follows the provider's jurisdiction: Feicheng's city office after negotiation ---
        async def act(request_id: str, action: str, headers: dict[str, str], **body: Any) -> httpx.Response:
            return await http.post(f"/api/v1/requests/{request_id}/{action}", json=body, headers=headers)

        for request_id, reviewer in ((hosted["id"], fc), (own_dept["id"], psb)):
            assert (await act(request_id, "reject", reviewer, reason="用途与共享条件不符")).status_code == 200
            r = await act(request_id, "escalate", hrss, reason="确因社保业务需要，申请协商")
            assert r.status_code == 200 and r.json()["escalation_step"]["name"] == "negotiation", r.text
            assert (await act(request_id, "reject", reviewer, reason="协商未果")).status_code == 200
        r = await act(hosted["id"], "escalate", hrss, reason="协商未果，申请市政府办公室协调")
        assert r.status_code == 200, r.text
        assert (r.json()["escalation_step"]["label"], r.json()["awaiting"]) == ("市政府办公室协调", "platform_office")
        worklist = (await http.get("/api/v1/requests/worklist", headers=admin)).json()["items"]
        assert [i["id"] for i in worklist] == [hosted["id"]]  # the coordination is the platform office's to decide
        refused(await act(own_dept["id"], "escalate", hrss, reason="再申请协调"), 409, "no_further_escalation")

        # --- moving the department to the host's own jurisdiction moves its new requests to the host's rules ---
        moved = await http.put(
            f"{departments_path}/{FC_PSB}/jurisdiction", json={"jurisdiction_code": None}, headers=admin
        )
        assert moved.status_code == 200 and moved.json()["jurisdiction_code"] is None, moved.text
        refused(
            await http.put(
                f"{departments_path}/{FC_PSB}/jurisdiction", json={"jurisdiction_code": "370983"}, headers=psb
            ),
            403,
            "forbidden",
        )
        refused(
            await http.put(
                f"{departments_path}/{FC_PSB}/jurisdiction", json={"jurisdiction_code": "000000"}, headers=admin
            ),
            422,
            "validation_failed",
            "jurisdiction_code",
        )
        await eventually_equals(lambda: profile_of(FC_PSB), "zhonglou", timeout=15.0)
        assert (await act(hosted["id"], "withdraw", hrss)).status_code == 200
        again = await apply(fc_code)
        assert (again["profile"], again["due_date"]) == ("zhonglou", "2026-10-10")
        # The request made before keeps the rules it was submitted under.
        before = (await http.get(f"/api/v1/requests/{hosted['id']}", headers=hrss)).json()
        assert (before["profile"], before["escalation_step"]["label"]) == ("feicheng", "市政府办公室协调")

        # --- and back: Feicheng's ten working days again ---
        back = await http.put(
            f"{departments_path}/{FC_PSB}/jurisdiction", json={"jurisdiction_code": "370983"}, headers=admin
        )
        assert back.status_code == 200 and back.json()["jurisdiction_profile"] == "feicheng"
        await eventually_equals(lambda: profile_of(FC_PSB), "feicheng", timeout=15.0)
        assert (await act(again["id"], "withdraw", hrss)).status_code == 200
        third = await apply(fc_code)
        assert (third["profile"], third["due_date"]) == ("feicheng", "2026-10-16")
        changes = [e for e in await outbox(p.apps["gateway"], "identity.department.changed") if e["code"] == FC_PSB]
        assert [(e["jurisdiction_code"], e["profile"]) for e in changes] == [
            ("370983", "feicheng"),
            (None, None),
            ("370983", "feicheng"),
        ]


async def test_the_demo_hosts_feicheng_beside_the_platforms_own_departments(platform, tmp_path) -> None:
    async with platform("gateway", "request", "audit", profile="zhonglou") as p, p.client() as http:
        admin_password = p.apps["gateway"].state.settings.admin_password.get_secret_value()
        ctx = DemoContext(gateway_url=p.urls["gateway"], client=http, admin_password=admin_password, home=tmp_path)
        await identities(ctx)
        await hosted_jurisdiction(ctx)
        await hosted_jurisdiction(ctx)  # a second run changes nothing
        admin = bearer(await p.token())
        listed = (await http.get("/api/v1/identity/jurisdictions", headers=admin)).json()
        assert [(j["code"], j["name"], j["profile"], j["departments"]) for j in listed["items"]] == [
            ("370983", "肥城市", "feicheng", 1)
        ]
        ((fc_code, fc_name, fc_short),) = HOSTED_DEPARTMENTS
        rows = (await http.get("/api/v1/identity/departments", params={"limit": 500}, headers=admin)).json()["items"]
        by_jurisdiction = {d["name"]: d["jurisdiction_name"] for d in rows}
        assert by_jurisdiction[fc_name] == "肥城市" and by_jurisdiction[PSB.name] is None
        assert all(d["filed_at"] for d in rows)
        assert {f"{fc_short}_admin", f"{fc_short}_reviewer"} <= set(ctx.credentials["users"])
        fc = bearer(await p.token(f"{fc_short}_reviewer", DEMO_PASSWORD))

        async def rules() -> tuple[str, int]:
            r = (await http.get("/api/v1/requests/rules", params={"department_code": fc_code}, headers=fc)).json()
            return r["profile"], r["reply_deadline_wd"]

        await eventually_equals(rules, ("feicheng", 10), timeout=15.0)

        # Supervision holds each department to its own jurisdiction's rules: Feicheng's head of department and
        # resource administrator on file (001 Art.31), the host's chief data officer (000 Art.24).
        async def missing(department: str) -> tuple[str, list[str]]:
            r = await http.get("/api/v1/supervision/accountable", params={"department": department}, headers=admin)
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            return (items[0]["profile"], items[0]["missing"]) if items else ("", [])

        await eventually_equals(
            lambda: missing(fc_code), ("feicheng", ["head_of_department", "resource_administrator"]), timeout=15.0
        )
        assert await missing(PSB.code) == ("zhonglou", ["chief_data_officer"])

        # A rectification notice is addressed to the first accountable of the department's own jurisdiction.
        async def notice_to(department: str) -> str:
            body = {"department_code": department, "resource_code": "R-1", "description": "超出申请用途使用共享数据"}
            r = await http.post("/api/v1/supervision/violations", json=body, headers=admin)
            assert r.status_code == 201, r.text
            return str(r.json()["addressed_role"])

        assert await notice_to(fc_code) == "head_of_department"
        assert await notice_to(PSB.code) == "chief_data_officer"
