"""Update obligations counted in working days across the 2026 National Day holiday, and IT projects."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from catalog_helpers import CIVIL, NAMES, PSB, fields_of, resource_body

from govshare_common.clock import FrozenClock

from catalog_svc.app import OVERDUE_JOB
from catalog_svc.events import OBLIGATION_OVERDUE

API = "/api/v1/catalog"
CHINA = ZoneInfo("Asia/Shanghai")


def at(day: str, time: str = "09:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=CHINA)


async def test_obligation_recorded_before_national_day_is_overdue_on_the_right_working_day(catalog) -> None:
    clock = FrozenClock(at("2026-09-25", "10:00"))  # the Friday before the 2026 National Day holiday
    async with catalog(clock, watch=True) as c:
        admin, dept = c.platform_admin(), c.dept_admin(CIVIL)
        resp = await c.http.post(
            f"{API}/obligations",
            json={
                "department_code": CIVIL,
                "department_name": NAMES[CIVIL],
                "reason": "law_revised",
                "description": "《社会救助暂行办法》修订，最低生活保障信息项需调整",
            },
            headers=admin,
        )
        assert resp.status_code == 201, resp.text
        obligation = resp.json()
        # 15 working days: 09-28..30 (3), 10-01..07 off, 10-08, 09, Sat 10-10 worked (6), 10-12..16 (11),
        # 10-19..22 (15). Counting weekdays alone would have given 10-16.
        assert obligation["recorded_on"] == "2026-09-25"
        assert obligation["due_on"] == "2026-10-22"
        assert obligation["status"] == "open" and obligation["due_unknown_years"] == []

        async def status_on(moment: datetime) -> str:
            clock.set(moment)
            assert await c.app.state.jobs.run_once(OVERDUE_JOB)
            listed = (await c.http.get(f"{API}/departments/{CIVIL}/resources", headers=dept)).json()
            return listed["obligations"][0]["status"]

        assert await status_on(at("2026-10-09")) == "open"
        assert await status_on(at("2026-10-16", "18:00")) == "open"
        assert await status_on(at("2026-10-22", "23:59")) == "open"  # the due date itself is still in time
        assert await status_on(at("2026-10-23", "00:30")) == "overdue"
        # The department sees it on its own list; another department does not.
        mine = (await c.http.get(f"{API}/obligations", headers=dept)).json()
        assert [(o["id"], o["status"], o["overdue_since"]) for o in mine["items"]] == [
            (obligation["id"], "overdue", "2026-10-23")
        ]
        assert (await c.http.get(f"{API}/obligations", headers=c.dept_admin(PSB))).json()["total"] == 0
        assert (
            await c.http.get(f"{API}/obligations", params={"department": CIVIL}, headers=c.dept_admin(PSB))
        ).status_code == 403

        # The job announces it once, however often it runs.
        assert await status_on(at("2026-10-26")) == "overdue"
        events = await c.received(count=1, types=[OBLIGATION_OVERDUE])
        assert len(events) == 1
        assert events[0]["data"]["department_code"] == CIVIL
        assert (events[0]["data"]["due_on"], events[0]["data"]["overdue_since"]) == (
            "2026-10-22",
            "2026-10-23",
        )

        # Late, the department updates its catalog: the obligation is fulfilled (late).
        rid = (await c.http.post(f"{API}/resources", json=resource_body(CIVIL), headers=dept)).json()["id"]
        await c.http.post(f"{API}/resources/{rid}/submit", headers=dept)
        settled = (await c.http.get(f"{API}/obligations/{obligation['id']}", headers=dept)).json()
        assert (settled["status"], settled["fulfilled_late"], settled["fulfilled_by_resource"]) == (
            "fulfilled",
            True,
            rid,
        )
        listed = (await c.http.get(f"{API}/departments/{CIVIL}/resources", headers=dept)).json()
        assert listed["obligations"] == []


async def test_obligation_refuses_a_malformed_department_code(catalog) -> None:
    async with catalog() as c:
        before = await c.counts()
        bad = {"department_code": "12345", "reason": "functions_changed", "description": "机构改革"}
        resp = await c.http.post(f"{API}/obligations", json=bad, headers=c.platform_admin())
        assert fields_of(resp) == {"department_code": "uscc_length"}
        wrong_check = {**bad, "department_code": CIVIL[:-1] + ("0" if CIVIL[-1] != "0" else "1")}
        resp = await c.http.post(f"{API}/obligations", json=wrong_check, headers=c.platform_admin())
        assert fields_of(resp) == {"department_code": "uscc_check_failed"}
        only_admin = await c.http.post(
            f"{API}/obligations", json={**bad, "department_code": CIVIL}, headers=c.dept_admin(CIVIL)
        )
        assert only_admin.status_code == 403
        assert await c.counts() == before
        confirmed = await c.http.post(
            f"{API}/obligations", json={**wrong_check, "confirm_code": True}, headers=c.platform_admin()
        )
        assert confirmed.status_code == 201


async def test_project_registers_its_catalog_before_approval_and_is_accepted_only_when_published(
    catalog,
) -> None:
    async with catalog() as c:
        dept, admin = c.dept_admin(PSB), c.platform_admin()
        empty = (await c.http.post(f"{API}/projects", json={"name": "智慧警务二期"}, headers=dept)).json()
        refused = await c.http.post(f"{API}/projects/{empty['id']}/approve", headers=admin)
        assert fields_of(refused) == {"resource_ids": "project_catalog_missing"}

        ids = [
            (await c.http.post(f"{API}/resources", json=resource_body(name=n), headers=dept)).json()["id"]
            for n in ("警情信息", "视频监控点位信息")
        ]
        foreign = (await c.http.post(f"{API}/resources", json=resource_body(CIVIL), headers=c.dept_admin(CIVIL))).json()
        not_own = await c.http.post(
            f"{API}/projects", json={"name": "x", "resource_ids": [ids[0], foreign["id"]]}, headers=dept
        )
        assert fields_of(not_own) == {"resource_ids.1": "not_own_department"}

        project = (
            await c.http.post(f"{API}/projects", json={"name": "智慧警务三期", "resource_ids": ids}, headers=dept)
        ).json()
        assert project["status"] == "registered" and [r["id"] for r in project["resources"]] == ids
        assert (await c.http.post(f"{API}/projects/{project['id']}/approve", headers=dept)).status_code == 403
        approved = await c.http.post(f"{API}/projects/{project['id']}/approve", headers=admin)
        assert approved.json()["status"] == "approved"

        # Acceptance checks that the project's resources are on the platform.
        await c.http.post(f"{API}/resources/{ids[0]}/submit", headers=dept)
        await c.http.post(f"{API}/resources/{ids[0]}/publish", headers=admin)
        early = await c.http.post(f"{API}/projects/{project['id']}/accept", headers=admin)
        assert early.status_code == 409 and early.json()["code"] == "acceptance_refused"
        assert fields_of(early) == {"resource_ids.1": "resource_unpublished"}
        assert (await c.http.get(f"{API}/projects/{project['id']}", headers=dept)).json()["status"] == "approved"

        await c.http.post(f"{API}/resources/{ids[1]}/submit", headers=dept)
        await c.http.post(f"{API}/resources/{ids[1]}/publish", headers=admin)
        accepted = await c.http.post(f"{API}/projects/{project['id']}/accept", headers=admin)
        assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
        assert accepted.json()["ready_for_acceptance"] is True
