"""The public's open-data demands through the real platform (Beijing 004 Art.20, `open_data` and
`open_data_demand_reply_wd`): anyone files one without an account; the named resource's provider answers it,
or the platform office when none is named, within 15 working days by the calendar; a demand left unanswered is
overdue and draws a rectification notice against whoever owed the answer. Where the profile opens no data, no
demand is taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway_helpers import bearer
from published_resources import RESOURCE, publish
from sqlalchemy import text

from govshare_common.clock import FrozenClock
from govshare_common.sharing import PLATFORM_OFFICE
from govshare_common.testing import eventually
from govshare_stack.demo_steps import departments

from catalog_svc.demo import PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

DEMAND = {
    "subject": "希望开放户籍人口民族构成统计数据",
    "content": "用于民族人口结构研究，按街道汇总即可，不需要个人信息。",
    "requester_name": "北京某大学社会学系",
    "requester_contact": "research@example.edu.cn",
}


async def test_the_public_files_open_data_demands_answered_in_time_or_noticed(platform) -> None:
    request_clock = FrozenClock(datetime.now(UTC) - timedelta(days=40))
    async with (
        platform("gateway", "catalog", "request", "audit", profile="beijing", clocks={"request": request_clock}) as p,
        p.client() as http,
    ):
        admin_token = await p.token()
        admin = bearer(admin_token)
        await seed_identities(http, admin_token, departments())
        psb_admin = bearer(await p.token("gaj_admin", DEMO_PASSWORD))
        psb_reviewer = bearer(await p.token("gaj_reviewer", DEMO_PASSWORD))
        civil_reviewer = bearer(await p.token("mzj_reviewer", DEMO_PASSWORD))
        code = await publish(http, RESOURCE, dept_admin=psb_admin, platform_admin=admin)

        async def request_svc_knows() -> bool:
            async with p.apps["request"].state.db.engine.connect() as conn:
                q = text("SELECT count(*) FROM resource_projection WHERE code = :c")
                return bool((await conn.execute(q, {"c": code})).scalar())

        await eventually(request_svc_knows, timeout=15.0)
        async with p.client() as public:  # no account, no token
            unknown = await public.post(
                "/api/v1/requests/open-data-demands", json={**DEMAND, "resource_code": "999999/000001"}
            )
            assert unknown.status_code == 422
            assert unknown.json()["details"]["fields"][0]["field"] == "resource_code"
            to_provider = await public.post(
                "/api/v1/requests/open-data-demands", json={**DEMAND, "resource_code": code}
            )
            assert to_provider.status_code == 201, to_provider.text
            to_office = await public.post(
                "/api/v1/requests/open-data-demands", json={**DEMAND, "subject": "希望开放全市养老机构名录"}
            )
            assert to_office.status_code == 201, to_office.text
            listed = await public.get("/api/v1/requests/open-data-demands")
            assert listed.status_code == 401  # seeing demands needs an account
            answered_anonymously = await public.post(
                f"/api/v1/requests/open-data-demands/{to_provider.json()['id']}/answer", json={"answer": "已开放"}
            )
            assert answered_anonymously.status_code == 401

        demand, office_demand = to_provider.json(), to_office.json()
        assert (demand["department_code"], demand["working_days"], demand["state"]) == (PSB.code, 15, "pending")
        assert office_demand["department_code"] == PLATFORM_OFFICE
        deadline = await http.get(
            "/api/v1/platform/calendar/deadline",
            params={"start": demand["filed_on"], "working_days": 15},
            headers=admin,
        )
        assert demand["due_on"] == deadline.json()["due"]

        # The provider sees and answers its own; another department neither sees nor answers it.
        mine = await http.get("/api/v1/requests/open-data-demands", headers=psb_reviewer)
        assert [d["id"] for d in mine.json()["items"]] == [demand["id"]]
        assert (
            await http.get(f"/api/v1/requests/open-data-demands/{demand['id']}", headers=civil_reviewer)
        ).status_code == 403
        not_mine = await http.post(
            f"/api/v1/requests/open-data-demands/{office_demand['id']}/answer",
            json={"answer": "不归本部门"},
            headers=psb_reviewer,
        )
        assert not_mine.status_code == 403
        answered = await http.post(
            f"/api/v1/requests/open-data-demands/{demand['id']}/answer",
            json={"answer": "已按街道汇总后在开放目录中开放，见资源 " + code},
            headers=psb_reviewer,
        )
        assert answered.status_code == 200 and answered.json()["state"] == "answered"

        # Forty days on, the office's demand is overdue: a notice against the platform office, none against PSB.
        request_clock.set(datetime.now(UTC))
        assert await p.apps["request"].state.jobs.run_once("open-data-demands-overdue")

        async def noticed() -> list[tuple[str, str]] | None:
            r = await http.get(
                "/api/v1/supervision/notices", params={"violation": "open_data_demand_overdue"}, headers=admin
            )
            found = [(n["department_code"], n["reference"]) for n in r.json()["items"]]
            return found or None

        assert await eventually(noticed, timeout=15.0) == [(PLATFORM_OFFICE, office_demand["id"])]
        office_view = await http.get(f"/api/v1/requests/open-data-demands/{office_demand['id']}", headers=admin)
        assert office_view.json()["overdue"] is True


async def test_no_open_data_demands_where_the_profile_opens_no_data(platform) -> None:
    async with platform("request", profile="zhonglou") as p, p.client("request") as public:
        r = await public.post("/api/v1/requests/open-data-demands", json=DEMAND)
        assert r.status_code == 404 and r.json()["code"] == "open_data_off"
