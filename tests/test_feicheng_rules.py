"""Feicheng's rules through the real platform (seeds/001):

- Art.21 update-cycle sanctions (`update_cycle_sanctions`): a provider whose hosted data missed its update cycle
  can have its rights restricted by the platform office — no new share request — until the office lifts it;
  the department sees the restriction and its reason, and a department with no missed update cannot be
  restricted;
- an update obligation that names a resource is settled by that resource's submission only;
- Art.31 resource administrator on file (`resource_administrator_on_file`): a department without one on file
  is flagged, and the one on file is kept current.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from gateway_helpers import bearer
from published_resources import RESOURCE, publish
from sqlalchemy import text

from govshare_common.clock import FrozenClock
from govshare_common.testing import eventually, eventually_equals
from govshare_stack.demo_steps import departments

from catalog_svc.demo import CIVIL, HRSS, PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

APPLICATION = {
    "items": ["XM"],
    "purposes": ["data_verification"],
    "scope": "户籍业务经办人员",
    "security_measures": "政务外网访问，全程留痕",
    "business_matter": "户籍迁移核验",
}


async def test_feicheng_restricts_a_late_provider_settles_obligations_per_resource_and_flags_administrators(
    platform,
) -> None:
    # exchange-svc lives three days ahead: the daily resource just published has missed its update cycle.
    exchange_clock = FrozenClock(datetime.now(UTC) + timedelta(days=3))
    catalog_clock = FrozenClock(datetime.now(UTC))
    async with (
        platform(
            "gateway",
            "catalog",
            "request",
            "exchange",
            "audit",
            profile="feicheng",
            clocks={"exchange": exchange_clock, "catalog": catalog_clock},
        ) as p,
        p.client() as http,
    ):
        admin_token = await p.token()
        await seed_identities(http, admin_token, departments())
        short = {code: s for code, _n, s in departments()}
        admin = bearer(admin_token)
        psb = bearer(await p.token(f"{short[PSB.code]}_admin", DEMO_PASSWORD))
        hrss = bearer(await p.token(f"{short[HRSS.code]}_admin", DEMO_PASSWORD))

        stale_code = await publish(http, RESOURCE, dept_admin=psb, platform_admin=admin)
        hrss_resource = {
            **RESOURCE,
            "name": "社会保险参保信息",
            "provider_code": HRSS.code,
            "provider_name": HRSS.name,
            "category_name": "人社",
            # Updated yearly: three days on it is not late, so only the police bureau's resource lapses
            # whichever of the two exchange-svc has learnt of when the freshness job runs.
            "update_cycle": "yearly",
        }
        wanted = await publish(http, hrss_resource, dept_admin=hrss, platform_admin=admin)

        async def exchange_knows() -> bool:
            async with p.apps["exchange"].state.db.engine.connect() as conn:
                n = (
                    await conn.execute(text("SELECT count(*) FROM resource WHERE code = :c"), {"c": stale_code})
                ).scalar()
                return bool(n)

        await eventually(exchange_knows, timeout=15.0)
        assert await p.apps["exchange"].state.jobs.run_once("exchange-freshness")

        async def lapses(headers: dict[str, str]) -> list[Any]:
            r = await http.get("/api/v1/requests/restrictions/lapses", headers=headers)
            assert r.status_code == 200, r.text
            return [(i["department_code"], i["kind"], i["resource_code"]) for i in r.json()["items"]]

        await eventually_equals(lambda: lapses(admin), [(PSB.code, "data_stale", stale_code)], timeout=15.0)
        assert await lapses(hrss) == []  # a department sees its own lapses only

        # No missed update, no restriction; a reason is required.
        none = await http.post(
            "/api/v1/requests/restrictions", json={"department_code": CIVIL.code, "reason": "未更新"}, headers=admin
        )
        assert none.status_code == 409 and none.json()["code"] == "no_missed_update"
        bare = await http.post("/api/v1/requests/restrictions", json={"department_code": PSB.code}, headers=admin)
        assert bare.status_code == 422 and bare.json()["details"]["fields"][0]["field"] == "reason"
        not_office = await http.post(
            "/api/v1/requests/restrictions", json={"department_code": HRSS.code, "reason": "x"}, headers=psb
        )
        assert not_office.status_code == 403

        reason = "户籍人口登记信息未按每日更新周期更新数据"
        imposed = await http.post(
            "/api/v1/requests/restrictions", json={"department_code": PSB.code, "reason": reason}, headers=admin
        )
        assert imposed.status_code == 201, imposed.text
        restriction = imposed.json()
        assert restriction["in_force"] and [lapse["kind"] for lapse in restriction["lapses"]] == ["data_stale"]

        async def apply(headers: dict[str, str]) -> httpx.Response:
            return await http.post("/api/v1/requests", json={"resource_code": wanted, **APPLICATION}, headers=headers)

        async def request_svc_knows() -> bool:
            async with p.apps["request"].state.db.engine.connect() as conn:
                q = text("SELECT count(*) FROM resource_projection WHERE code = :c")
                return bool((await conn.execute(q, {"c": wanted})).scalar())

        await eventually(request_svc_knows, timeout=15.0)
        refused = await apply(psb)
        assert refused.status_code == 403 and refused.json()["code"] == "rights_restricted", refused.text
        assert refused.json()["details"]["reason"] == reason
        seen = (await http.get("/api/v1/requests/restrictions", params={"in_force": True}, headers=psb)).json()
        assert [(r["department_code"], r["reason"]) for r in seen["items"]] == [(PSB.code, reason)]
        assert (await http.get("/api/v1/requests/restrictions", headers=hrss)).json()["total"] == 0
        again = await http.post(
            "/api/v1/requests/restrictions", json={"department_code": PSB.code, "reason": reason}, headers=admin
        )
        assert again.status_code == 409 and again.json()["code"] == "already_restricted"

        lifted = await http.post(
            f"/api/v1/requests/restrictions/{restriction['id']}/lift", json={"reason": "已补报数据"}, headers=admin
        )
        assert lifted.status_code == 200 and not lifted.json()["in_force"]
        assert (await apply(psb)).status_code == 201

        async def emitted() -> list[str]:
            async with p.apps["request"].state.db.engine.connect() as conn:
                rows = await conn.execute(text("SELECT type FROM outbox WHERE type LIKE 'restriction.%' ORDER BY id"))
                return [r.type for r in rows]

        assert await emitted() == ["restriction.imposed", "restriction.lifted"]

        # An obligation naming one resource: another resource's submission does not settle it, its own does.
        other = await publish(http, {**RESOURCE, "name": "暂住人口登记信息"}, dept_admin=psb, platform_admin=admin)
        ids = {}
        for c in (stale_code, other):
            found = (await http.get("/api/v1/catalog/resources", params={"limit": 200}, headers=psb)).json()
            ids[c] = next(i["id"] for i in found["items"] if i["code"] == c)
        recorded = await http.post(
            "/api/v1/catalog/obligations",
            json={
                "department_code": PSB.code,
                "reason": "law_revised",
                "description": "《户口登记条例》修订",
                "resource_ids": [ids[stale_code]],
            },
            headers=admin,
        )
        assert recorded.status_code == 201, recorded.text
        obligation = recorded.json()
        foreign = await http.post(
            "/api/v1/catalog/obligations",
            json={"department_code": PSB.code, "reason": "law_revised", "description": "x", "resource_ids": [wanted]},
            headers=admin,
        )
        assert foreign.status_code == 422

        async def resubmit(resource_id: str, content: dict[str, Any]) -> None:
            changed = {**content, "summary": content["summary"] + "（按修订后的条例更新）", "change_reason": "法规修订"}
            r = await http.put(f"/api/v1/catalog/resources/{resource_id}/draft", json=changed, headers=psb)
            assert r.status_code == 200, r.text
            r = await http.post(
                f"/api/v1/catalog/resources/{resource_id}/submit", json={"change_reason": "法规修订"}, headers=psb
            )
            assert r.status_code == 200, r.text

        async def status() -> tuple[str, Any]:
            o = (await http.get(f"/api/v1/catalog/obligations/{obligation['id']}", headers=psb)).json()
            return o["status"], o["fulfilled_by_resource"]

        await resubmit(ids[other], {**RESOURCE, "name": "暂住人口登记信息"})
        assert await status() == ("open", None)
        await resubmit(ids[stale_code], RESOURCE)
        assert await status() == ("fulfilled", ids[stale_code])

        # Art.31: the head is the first accountable, and the resource administrator is on file with the office.
        async def register(headers: dict[str, str], **params: Any) -> dict[str, Any]:
            r = await http.get("/api/v1/supervision/accountable", params=params, headers=headers)
            assert r.status_code == 200, r.text
            return dict(r.json())

        await eventually_equals(lambda: _total(register(admin)), len(departments()), timeout=15.0)
        listed = await register(admin)
        assert listed["required_roles"] == ["head_of_department", "resource_administrator"]
        for role, name in (("head_of_department", "赵局长"), ("resource_administrator", "孙科长")):
            r = await http.put(f"/api/v1/supervision/accountable/{PSB.code}/{role}", json={"name": name}, headers=psb)
            assert r.status_code == 200, r.text
        flagged = {d["department_code"]: d["missing"] for d in (await register(admin, missing=True))["items"]}
        assert PSB.code not in flagged and flagged[HRSS.code] == ["head_of_department", "resource_administrator"]
        # Kept current: a new administrator replaces the one on file; the change is kept.
        moved = await http.put(
            f"/api/v1/supervision/accountable/{PSB.code}/resource_administrator", json={"name": "周科长"}, headers=psb
        )
        assert moved.status_code == 200
        mine = (await register(psb))["items"]
        assert mine[0]["people"]["resource_administrator"]["name"] == "周科长"
        history = (await http.get(f"/api/v1/supervision/accountable/{PSB.code}/history", headers=psb)).json()
        assert [h["name"] for h in history["items"] if h["role"] == "resource_administrator"] == ["周科长", "孙科长"]

        # Onboarded, each department owes its catalog within 15 working days (Art.10); PSB's first submission
        # settled it, 民政局 compiled nothing: overdue, a notice, and a lapse a restriction can rest on.
        async def onboarding() -> dict[str, str]:
            r = await http.get("/api/v1/catalog/obligations", params={"limit": 100}, headers=admin)
            return {o["department_code"]: o["status"] for o in r.json()["items"] if o["reason"] == "onboarded"}

        owed = await onboarding()
        assert owed[PSB.code] == "fulfilled" and owed[CIVIL.code] == "open" and len(owed) == len(departments())
        catalog_clock.set(datetime.now(UTC) + timedelta(days=40))
        assert await p.apps["catalog"].state.jobs.run_once("catalog-obligations-overdue")
        assert (await onboarding())[CIVIL.code] == "overdue"

        async def catalog_notices() -> set[str]:
            r = await http.get(
                "/api/v1/supervision/notices", params={"violation": "catalog_overdue", "limit": 100}, headers=admin
            )
            return {n["department_code"] for n in r.json()["items"]}

        await eventually(lambda: _has(catalog_notices(), CIVIL.code), timeout=15.0)
        assert PSB.code not in await catalog_notices()

        async def civil_restricted() -> bool:
            r = await http.post(
                "/api/v1/requests/restrictions",
                json={"department_code": CIVIL.code, "reason": "未按时编制目录"},
                headers=admin,
            )
            return r.status_code == 201

        await eventually(civil_restricted, timeout=15.0)


async def _has(found: Any, member: str) -> bool:
    return member in await found


async def _total(listing: Any) -> int:
    return int((await listing)["total"])
