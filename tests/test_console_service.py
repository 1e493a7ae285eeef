"""The console service behind the real gateway: the built pages with their security headers, the platform
office's status (refused to anyone else), working days left counted on the platform's calendar, and the audit
chain status the dashboard shows."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from gateway_helpers import bearer

from govshare_common.testing import eventually
from govshare_common.workdays import china_today

from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities


async def test_pages_carry_a_policy_without_inline_scripts_and_client_routes_get_the_app(platform) -> None:
    async with platform("gateway", "console") as p, p.client() as http:
        index = await http.get("/console/")
        assert index.status_code == 200
        policy = index.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy
        assert index.headers["cache-control"] == "no-cache"

        asset = next(part.split('"')[0] for part in index.text.split('src="')[1:] if "/assets/" in part)
        js = await http.get(asset)
        assert js.status_code == 200 and "immutable" in js.headers["cache-control"]
        assert js.headers["content-security-policy"] == policy

        route = await http.get("/console/review/worklist")  # a page of the app: the same document
        assert route.status_code == 200 and route.text == index.text
        assert (await http.get("/console/assets/missing.js")).status_code == 404
        climbing = await http.get("/console/%2e%2e/%2e%2e/pyproject.toml")
        assert "[project]" not in climbing.text

        refused = await http.post("/console/")
        assert refused.status_code == 404  # the gateway serves the console read-only


async def test_platform_status_is_for_the_platform_office_only(platform) -> None:
    async with platform("gateway", "console") as p, p.client() as http:
        admin = await p.token()
        await seed_identities(http, admin)
        assert (await http.get("/console/api/platform/status")).status_code == 401
        dept_admin = await p.token("dsj_admin", DEMO_PASSWORD)
        refused = await http.get("/console/api/platform/status", headers=bearer(dept_admin))
        assert refused.status_code == 403
        assert set(refused.json()) >= {"code", "message", "details", "trace_id"}

        status = (await http.get("/console/api/platform/status", headers=bearer(admin))).json()
        ready = {s["name"]: s["ready"] for s in status["services"]}
        assert ready["gateway"] is True and ready["console"] is True
        assert ready["catalog"] is False  # not started in this test: shown as not ready, not hidden
        gateway = next(t for t in status["topics"] if t["topic"] == "gateway")
        assert gateway["published_total"] >= 1  # identities and access events went out
        assert gateway["events_per_second"] is None  # a rate needs two samples
        again = (await http.get("/console/api/platform/status", headers=bearer(admin))).json()
        assert next(t for t in again["topics"] if t["topic"] == "gateway")["events_per_second"] is not None


async def test_working_days_left_follow_the_calendar_and_bad_dates_are_refused(platform) -> None:
    async with platform("gateway", "console") as p, p.client() as http:
        token = await p.token()
        today = china_today(p.apps["gateway"].state.clock.now())
        r = await http.get(
            "/api/v1/platform/calendar/deadline",
            params={"start": today.isoformat(), "working_days": 3},
            headers=bearer(token),
        )
        due = r.json()["due"]
        yesterday = (today - timedelta(days=1)).isoformat()
        days = await http.get(
            "/console/api/working-days", params=[("until", due), ("until", today.isoformat())], headers=bearer(token)
        )
        assert days.status_code == 200, days.text
        assert days.json()["days"] == {due: 3, today.isoformat(): 0}
        past = (await http.get("/console/api/working-days", params={"until": yesterday}, headers=bearer(token))).json()
        assert past["days"][yesterday] <= 0
        assert date.fromisoformat(past["today"]) == today

        bad = await http.get("/console/api/working-days", params={"until": "2026-13-40"}, headers=bearer(token))
        assert bad.status_code == 422
        assert bad.json()["details"]["fields"][0]["field"] == "until"
        assert (await http.get("/console/api/working-days", params={"until": due})).status_code == 401


async def test_the_dashboards_chain_status_is_for_the_platform_office_and_auditors(platform) -> None:
    async with platform("gateway", "audit") as p, p.client() as http:
        admin = await p.token()
        await seed_identities(http, admin)
        auditor = await p.token("auditor", DEMO_PASSWORD)
        dept_admin = await p.token("dsj_admin", DEMO_PASSWORD)

        async def logged() -> dict[str, Any] | None:
            r = await http.get("/api/v1/supervision/chain-status", headers=bearer(admin))
            assert r.status_code == 200, r.text
            return r.json() if r.json()["head_position"] > 0 else None  # audit-svc has read the gateway's events

        status = await eventually(logged, timeout=20.0)
        assert status["tail"]["ok"] is True and status["checkpoint"] is None
        assert status["tail"]["checked"] == status["head_position"]

        signed = await http.post("/api/v1/audit/checkpoints", headers=bearer(auditor))
        assert signed.status_code == 201, signed.text
        after = (await http.get("/api/v1/supervision/chain-status", headers=bearer(auditor))).json()
        assert after["checkpoint"]["position"] == signed.json()["position"]
        assert after["tail"]["ok"] is True and after["tail"]["from"] == signed.json()["position"]

        refused = await http.get("/api/v1/supervision/chain-status", headers=bearer(dept_admin))
        assert refused.status_code == 403
