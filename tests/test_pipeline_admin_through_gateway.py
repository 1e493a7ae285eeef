"""The platform office reaches each service's event quarantine, consumer cursors and job ticks through the gateway;
nobody else does."""

from __future__ import annotations

from gateway_helpers import GONG_AN, admin_headers, department_user, setup_department


async def test_quarantine_admin_routes_answer_the_platform_office_only(platform) -> None:
    async with platform("gateway", "request") as p, p.client() as http:
        admin = await admin_headers(p)
        # request-svc's pipeline, under an area the gateway routes to it, and the gateway's own.
        for area in ("requests", "platform"):
            r = await http.get(f"/api/v1/{area}/pipeline/quarantine", headers=admin)
            assert r.status_code == 200, r.text
            assert r.json()["items"] == []
        missing = await http.post("/api/v1/requests/pipeline/quarantine/catalog/42/retry", headers=admin)
        assert missing.status_code == 404
        assert set(missing.json()) == {"code", "message", "details", "trace_id"}

        await setup_department(http, admin, GONG_AN, "公安局")
        reviewer = await department_user(p, http, admin, GONG_AN, "reviewer1", ["dept_reviewer"])
        denied = await http.get("/api/v1/requests/pipeline/quarantine", headers={"Authorization": f"Bearer {reviewer}"})
        assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
        skip = await http.post(
            "/api/v1/requests/pipeline/quarantine/catalog/42/skip", headers={"Authorization": f"Bearer {reviewer}"}
        )
        assert skip.status_code == 403
        unauthenticated = await http.get("/api/v1/platform/pipeline/quarantine")
        assert unauthenticated.status_code == 401


async def test_cursors_and_job_ticks_answer_the_platform_office_only(platform) -> None:
    async with platform("gateway", "request") as p, p.client() as http:
        admin = await admin_headers(p)
        jobs = await http.get("/api/v1/requests/pipeline/jobs", headers=admin)
        assert jobs.status_code == 200, jobs.text
        listed = {j["job"]: j for j in jobs.json()["items"]}
        assert {"grant-expiry", "request-deadlines", "outbox-retention"} <= set(listed), listed
        assert listed["grant-expiry"]["interval_seconds"] == 60
        consumers = await http.get("/api/v1/requests/pipeline/consumers", headers=admin)
        assert consumers.status_code == 200, consumers.text
        assert isinstance(consumers.json()["items"], list)

        await setup_department(http, admin, GONG_AN, "公安局")
        reviewer = await department_user(p, http, admin, GONG_AN, "reviewer1", ["dept_reviewer"])
        for route in ("jobs", "consumers"):
            denied = await http.get(
                f"/api/v1/requests/pipeline/{route}", headers={"Authorization": f"Bearer {reviewer}"}
            )
            assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
            assert (await http.get(f"/api/v1/requests/pipeline/{route}")).status_code == 401
