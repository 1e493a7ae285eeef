"""Grants end on time (a job emitting grant.expired) or when the provider or the platform office revokes them;
Hainan's providers set their own reply terms, need a policy basis, and may allow third-party transfers."""

from __future__ import annotations

from datetime import timedelta

from request_helpers import CONSUMER, OTHER, PROVIDER, at, fields_of

from govshare_common.clock import FrozenClock

API = "/api/v1/requests"
GRANTS = "/api/v1/grants"


async def test_grant_expires_on_time_and_revocation_needs_the_provider_or_office_and_a_reason(stack) -> None:
    clock = FrozenClock(at("2026-11-02"))
    async with stack(clock, profile="zhonglou") as s:
        code = await s.publish("conditional")
        until = clock.now() + timedelta(days=10)
        grants = []
        for _ in range(2):
            rid = (await s.submit(code)).json()["id"]
            grants.append((await s.act(rid, "approve", s.reviewer(), valid_until=until.isoformat())).json()["grant_id"])

        clock.set(until - timedelta(seconds=1))
        await s.run_job("grant-expiry")
        assert await s.events("grant.expired") == []

        # Revocation: a reason is required; the consumer and other departments may not.
        assert fields_of(await s.http.post(f"{GRANTS}/{grants[0]}/revoke", json={}, headers=s.reviewer())) == {
            "reason": "required"
        }
        for who in (s.as_(CONSUMER, "dept_admin"), s.reviewer(OTHER)):
            assert (
                await s.http.post(f"{GRANTS}/{grants[0]}/revoke", json={"reason": "x"}, headers=who)
            ).status_code == 403
        revoked = await s.http.post(
            f"{GRANTS}/{grants[0]}/revoke", json={"reason": "超出用途使用"}, headers=s.reviewer()
        )
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        event = (await s.events("grant.revoked"))[0]["data"]
        assert event == {
            "grant_id": grants[0],
            "consumer_code": CONSUMER,
            "resource_code": code,
            "reason": "超出用途使用",
            "revoked_by": PROVIDER,
            "actor": f"dept_reviewer@{PROVIDER}",
        }

        clock.set(until)
        await s.run_job("grant-expiry")
        await s.run_job("grant-expiry")
        expired = await s.events("grant.expired")
        assert [e["data"]["grant_id"] for e in expired] == [grants[1]]  # the revoked one does not expire again
        assert set(expired[0]["data"]) == {"grant_id", "consumer_code", "resource_code", "expired_at"}
        listed = (await s.http.get(GRANTS, headers=s.consumer(), params={"status": "expired"})).json()
        assert [g["id"] for g in listed["items"]] == [grants[1]] and listed["total"] == 1
        assert (await s.http.get(GRANTS, headers=s.reviewer(OTHER))).json()["total"] == 0
        assert (await s.http.get(f"{GRANTS}/{grants[1]}", headers=s.reviewer(OTHER))).status_code == 403
        again = await s.http.post(f"{GRANTS}/{grants[1]}/revoke", json={"reason": "x"}, headers=s.office())
        assert again.status_code == 409

        # Renewal is a new request naming the old grant.
        renewed = await s.submit(code, renews_grant_id=grants[1])
        assert renewed.status_code == 201 and renewed.json()["renews_grant_id"] == grants[1]


async def test_hainan_terms_policy_basis_and_third_party_transfer_with_both_approvals(stack) -> None:
    clock = FrozenClock(at("2026-11-02"))
    async with stack(clock, profile="hainan") as s:
        code = await s.publish("conditional")
        missing = await s.submit(code)
        assert missing.status_code == 422 and fields_of(missing) == {"policy_basis": "policy_basis_required"}
        basis = "《海南省公共信息资源管理办法》第二十条"

        # Without stated terms the national 10 wd apply; the provider states 3.
        first = (await s.submit(code, policy_basis=basis)).json()
        assert first["due_date"] == "2026-11-16"
        terms = await s.http.put(
            f"{API}/provider-terms", json={"reply_deadline_wd": 3}, headers=s.as_(PROVIDER, "dept_admin")
        )
        assert terms.status_code == 200 and terms.json()["effective_reply_deadline_wd"] == 3
        second = (await s.submit(code, policy_basis=basis)).json()
        assert second["due_date"] == "2026-11-05"

        grant_id = (await s.act(second["id"], "approve", s.reviewer())).json()["grant_id"]
        path = f"{GRANTS}/{grant_id}/transfers"
        ask = {"third_party": "海南某大数据公司", "purpose": "联合开展社保数据分析"}
        assert (await s.http.post(path, json=ask, headers=s.reviewer(OTHER))).status_code == 403

        # Either refusal ends it.
        t1 = (await s.http.post(path, json=ask, headers=s.consumer())).json()
        assert t1["state"] == "pending"
        ok = await s.http.post(f"{path}/{t1['id']}/decision", json={"decision": "approve"}, headers=s.office())
        assert ok.json()["state"] == "pending" and ok.json()["office_decision"] == "approve"
        no_reason = await s.http.post(f"{path}/{t1['id']}/decision", json={"decision": "refuse"}, headers=s.reviewer())
        assert no_reason.status_code == 422
        refused = await s.http.post(
            f"{path}/{t1['id']}/decision", json={"decision": "refuse", "reason": "第三方无资质"}, headers=s.reviewer()
        )
        assert refused.json()["state"] == "refused"

        # Both approve: approved.
        t2 = (await s.http.post(path, json=ask, headers=s.consumer())).json()
        await s.http.post(f"{path}/{t2['id']}/decision", json={"decision": "approve"}, headers=s.reviewer())
        dup = await s.http.post(f"{path}/{t2['id']}/decision", json={"decision": "approve"}, headers=s.reviewer())
        assert dup.status_code == 409
        both = await s.http.post(f"{path}/{t2['id']}/decision", json={"decision": "approve"}, headers=s.office())
        assert both.json()["state"] == "approved"
        kinds = [e["type"] for e in await s.events() if e["type"].startswith("transfer.")]
        assert kinds.count("transfer.approved") == 1 and kinds.count("transfer.refused") == 1
        detail = (await s.http.get(f"{GRANTS}/{grant_id}", headers=s.consumer())).json()
        assert [t["state"] for t in detail["transfers"]] == ["refused", "approved"]
