"""What departments file with the platform office, through the real platform, under the profile each rule
belongs to:

- Xiangyang (seeds/002 Art.17, plan III.5): the yearly report due by the end of December
  (`yearly_report_due`) and monthly progress with key tasks (`monthly_progress`); a report missing after its
  due date draws a rectification notice; the office publishes the yearly evaluation; the systems register
  gives the plan's metrics (systems integrated, shared items, collaborative applications, connectivity rate,
  key tasks' progress);
- Zhonglou (seeds/000 Art.11, Art.24): the chief data officer is the first accountable (`accountable_role`),
  notices are addressed to the one on file; a legacy system not connected by 2023-09-30
  (`legacy_systems_connect_by`) draws a notice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from gateway_helpers import bearer
from published_resources import RESOURCE, publish

from govshare_common.clock import FrozenClock
from govshare_common.testing import eventually, eventually_equals
from govshare_common.workdays import CHINA_TZ
from govshare_stack.demo_steps import departments

from catalog_svc.demo import HRSS, PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

SUPERVISION = "/api/v1/supervision"


async def signed_in(p: Any, http: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    admin_token = await p.token()
    await seed_identities(http, admin_token, departments())
    short = {code: s for code, _n, s in departments()}
    psb = bearer(await p.token(f"{short[PSB.code]}_admin", DEMO_PASSWORD))
    hrss = bearer(await p.token(f"{short[HRSS.code]}_admin", DEMO_PASSWORD))
    return bearer(admin_token), psb, hrss


async def known_departments(http: httpx.AsyncClient, admin: dict[str, str]) -> int:
    r = await http.get(f"{SUPERVISION}/accountable", headers=admin)
    return int(r.json()["total"]) if r.status_code == 200 else 0


async def notices_of(http: httpx.AsyncClient, admin: dict[str, str], violation: str) -> dict[str, Any]:
    r = await http.get(f"{SUPERVISION}/notices", params={"violation": violation, "limit": 100}, headers=admin)
    return {n["reference"]: n for n in r.json()["items"]}


async def test_xiangyang_reports_on_their_due_dates_published_evaluation_and_integration_metrics(platform) -> None:
    audit_clock = FrozenClock(datetime(2026, 12, 20, 10, 0, tzinfo=CHINA_TZ))
    async with (
        platform("gateway", "catalog", "audit", profile="xiangyang", clocks={"audit": audit_clock}) as p,
        p.client() as http,
    ):
        admin, psb, hrss = await signed_in(p, http)
        everyone = len(departments())
        await eventually_equals(lambda: known_departments(http, admin), everyone, timeout=15.0)
        await publish(http, RESOURCE, dept_admin=psb, platform_admin=admin)

        yearly = {"kind": "yearly", "year": 2026, "content": "2026年度政务信息资源共享工作报告……"}
        on_time = await http.post(f"{SUPERVISION}/department-reports", json=yearly, headers=psb)
        assert on_time.status_code == 201, on_time.text
        assert (on_time.json()["due_on"], on_time.json()["late"]) == ("2026-12-31", False)
        twice = await http.post(f"{SUPERVISION}/department-reports", json=yearly, headers=psb)
        assert twice.status_code == 409 and twice.json()["code"] == "report_already_submitted"
        monthly = {
            "kind": "monthly",
            "year": 2026,
            "month": 11,
            "content": "11月整合共享工作进展",
            "key_tasks": [{"name": "社保系统接入共享平台", "progress": 60}, {"name": "目录编制", "progress": 100}],
        }
        late = await http.post(f"{SUPERVISION}/department-reports", json=monthly, headers=hrss)
        assert late.status_code == 201, late.text
        assert (late.json()["due_on"], late.json()["late"]) == ("2026-11-30", True)
        no_month = await http.post(f"{SUPERVISION}/department-reports", json={**monthly, "month": None}, headers=hrss)
        assert no_month.status_code == 422 and no_month.json()["details"]["fields"][0]["field"] == "month"
        foreign = await http.post(
            f"{SUPERVISION}/department-reports", json={**yearly, "department_code": HRSS.code}, headers=psb
        )
        assert foreign.status_code == 403

        # The schedule: Xiangyang's yearly report by 12-31 and a monthly progress by each month's end.
        due = (await http.get(f"{SUPERVISION}/department-reports/due", params={"year": 2026}, headers=admin)).json()
        status = {(r["department_code"], r["kind"], r["month"]): (r["due_on"], r["status"]) for r in due["items"]}
        assert status[(PSB.code, "yearly", None)] == ("2026-12-31", "submitted")
        assert status[(HRSS.code, "yearly", None)] == ("2026-12-31", "not_due")
        assert status[(HRSS.code, "monthly", 11)] == ("2026-11-30", "submitted_late")
        assert status[(PSB.code, "monthly", 11)] == ("2026-11-30", "missing")
        mine = (await http.get(f"{SUPERVISION}/department-reports/due", params={"year": 2026}, headers=psb)).json()
        assert {r["department_code"] for r in mine["items"]} == {PSB.code}

        # After the year's end the job finds who did not report: one notice per department and period.
        audit_clock.set(datetime(2027, 1, 5, 10, 0, tzinfo=CHINA_TZ))
        assert await p.apps["audit"].state.jobs.run_once("audit-registers")
        missing = await eventually(lambda: notices_of(http, admin, "report_missing"), timeout=10.0)
        yearly_missing = {ref.split(":")[2] for ref in missing if ref.startswith("report:yearly:")}
        monthly_missing = {ref.split(":")[2] for ref in missing if ref.startswith("report:monthly:")}
        assert PSB.code not in yearly_missing and HRSS.code in yearly_missing and len(yearly_missing) == everyone - 1
        assert len(monthly_missing) == everyone  # nobody sent December's progress
        assert all(n["working_days"] == 10 for n in missing.values())
        assert await p.apps["audit"].state.jobs.run_once("audit-registers")
        assert len(await notices_of(http, admin, "report_missing")) == len(missing)

        # The office publishes the year's evaluation; every department can then read it.
        not_yet = await http.get(f"{SUPERVISION}/evaluation/2026/published", headers=psb)
        assert not_yet.status_code == 404
        assert (await http.post(f"{SUPERVISION}/evaluation/2026/publish", headers=psb)).status_code == 403
        published = await http.post(f"{SUPERVISION}/evaluation/2026/publish", headers=admin)
        assert published.status_code == 200, published.text
        seen = (await http.get(f"{SUPERVISION}/evaluation/2026/published", headers=psb)).json()
        assert {d["department_code"] for d in seen["report"]["departments"]} >= {PSB.code, HRSS.code}

        # The systems register and the plan's metrics.
        for body in (
            {"name": "人口信息管理系统", "legacy": True, "status": "connected", "collaborative_apps": 2},
            {"name": "出入境管理系统", "legacy": True, "status": "integrated", "collaborative_apps": 1},
        ):
            r = await http.post(f"{SUPERVISION}/systems", json=body, headers=psb)
            assert r.status_code == 201, r.text
            assert r.json()["connect_by"] is None and r.json()["overdue"] is False  # Xiangyang sets no date
        # The same name again is that system, pointed to, not a second one (nor a 500).
        again = await http.post(
            f"{SUPERVISION}/systems", json={"name": "人口信息管理系统", "status": "planned"}, headers=psb
        )
        assert again.status_code == 409 and again.json()["code"] == "system_exists", again.text
        assert again.json()["details"]["system_id"] == next(
            s["id"]
            for s in (await http.get(f"{SUPERVISION}/systems", headers=psb)).json()["items"]
            if s["name"] == "人口信息管理系统"
        )

        # audit-svc learns the publication from the catalog's events: wait until it has, then read the metrics.
        async def shared_known() -> bool:
            metrics = (await http.get(f"{SUPERVISION}/metrics", headers=admin)).json()
            psb_row = next((d for d in metrics["departments"] if d["department_code"] == PSB.code), None)
            return bool(psb_row and psb_row["shared_resources"])

        await eventually(shared_known, timeout=30.0)
        metrics = (await http.get(f"{SUPERVISION}/metrics", headers=admin)).json()
        by_dept = {d["department_code"]: d for d in metrics["departments"]}
        assert (
            by_dept[PSB.code]["systems"],
            by_dept[PSB.code]["systems_integrated"],
            by_dept[PSB.code]["systems_connected"],
            by_dept[PSB.code]["connectivity_rate"],
            by_dept[PSB.code]["collaborative_applications"],
            by_dept[PSB.code]["shared_resources"],
            by_dept[PSB.code]["shared_items"],
        ) == (2, 2, 1, 0.5, 3, 1, len(RESOURCE["data_items"]))
        assert [t["name"] for t in by_dept[HRSS.code]["key_tasks"]] == ["社保系统接入共享平台", "目录编制"]
        assert metrics["totals"]["key_tasks_average_progress"] == 80.0
        assert await p.apps["audit"].state.jobs.run_once("audit-registers")
        assert await notices_of(http, admin, "legacy_not_connected") == {}


async def test_zhonglou_addresses_notices_to_the_chief_data_officer_and_flags_unconnected_legacy_systems(
    platform,
) -> None:
    async with platform("gateway", "audit", profile="zhonglou") as p, p.client() as http:
        admin, psb, _hrss = await signed_in(p, http)
        await eventually_equals(lambda: known_departments(http, admin), len(departments()), timeout=15.0)

        register = (await http.get(f"{SUPERVISION}/accountable", headers=admin)).json()
        assert register["required_roles"] == ["chief_data_officer"]
        assert all(d["missing"] == ["chief_data_officer"] and d["flagged"] for d in register["items"])
        filed = await http.put(
            f"{SUPERVISION}/accountable/{PSB.code}/chief_data_officer",
            json={"name": "王建国", "title": "副局长"},
            headers=psb,
        )
        assert filed.status_code == 200, filed.text
        head = await http.put(
            f"{SUPERVISION}/accountable/{PSB.code}/head_of_department", json={"name": "李局长"}, headers=psb
        )
        assert head.status_code == 200
        other = await http.put(
            f"{SUPERVISION}/accountable/{HRSS.code}/chief_data_officer", json={"name": "冒名"}, headers=psb
        )
        assert other.status_code == 403
        bad_role = await http.put(f"{SUPERVISION}/accountable/{PSB.code}/mascot", json={"name": "x"}, headers=psb)
        assert bad_role.status_code == 422
        mine = (await http.get(f"{SUPERVISION}/accountable", headers=psb)).json()
        assert [(d["department_code"], d["accountable"], d["flagged"]) for d in mine["items"]] == [
            (PSB.code, "王建国", False)
        ]
        flagged = (await http.get(f"{SUPERVISION}/accountable", params={"missing": True}, headers=admin)).json()
        assert PSB.code not in {d["department_code"] for d in flagged["items"]}

        # A legacy system still not connected, long after Zhonglou's 2023-09-30: a notice to the department,
        # addressed to its chief data officer; a connected one draws none.
        for body in (
            {"name": "户籍档案系统", "legacy": True, "status": "integrated"},
            {"name": "治安管理系统", "legacy": True, "status": "connected"},
        ):
            r = await http.post(f"{SUPERVISION}/systems", json=body, headers=psb)
            assert r.status_code == 201, r.text
        listed = (await http.get(f"{SUPERVISION}/systems", headers=psb)).json()
        assert {(s["name"], s["connect_by"], s["overdue"]) for s in listed["items"]} == {
            ("户籍档案系统", "2023-09-30", True),
            ("治安管理系统", "2023-09-30", False),
        }
        assert await p.apps["audit"].state.jobs.run_once("audit-registers")
        found = await eventually(lambda: notices_of(http, admin, "legacy_not_connected"), timeout=10.0)
        (notice,) = found.values()
        assert notice["department_code"] == PSB.code and "户籍档案系统" in notice["description"]
        assert (notice["addressed_role"], notice["addressed_name"]) == ("chief_data_officer", "王建国")
        history = (await http.get(f"{SUPERVISION}/accountable/{PSB.code}/history", headers=psb)).json()
        assert {h["role"] for h in history["items"]} == {"chief_data_officer", "head_of_department"}
        # Reports are not Zhonglou's: its rules ask for none through the platform.
        refused = await http.post(
            f"{SUPERVISION}/department-reports", json={"kind": "yearly", "year": 2026, "content": "x"}, headers=psb
        )
        assert refused.status_code == 409 and refused.json()["code"] == "report_not_in_profile"
