"""A share request through the provider's review, with deadlines counted on the real 2026 calendar."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from request_helpers import CONSUMER, OTHER, PROVIDER, at, fields_of

from govshare_common.clock import FrozenClock

API = "/api/v1/requests"


async def test_zhonglou_request_due_after_national_day_approved_with_narrowed_items(stack) -> None:
    # Tuesday 29 September 2026: 国庆 (1-7 October) and the make-up Saturday 10 October lie within 5 wd.
    clock = FrozenClock(at("2026-09-29"))
    async with stack(clock, profile="zhonglou") as s:
        code = await s.publish("conditional")
        submitted = await s.submit(code, valid_until="2027-09-30T00:00:00+08:00")
        assert submitted.status_code == 201, submitted.text
        req = submitted.json()
        rid = req["id"]
        # 9-30, 10-8, 10-9, 10-10 (make-up Saturday), 10-12: weekday arithmetic alone would say 10-06.
        assert req["due_date"] == "2026-10-12"
        assert req["state"] == "submitted" and req["awaiting"] == "provider"
        assert req["consumer_code"] == CONSUMER and req["provider_code"] == PROVIDER

        # The consumer cannot decide its own request; another department cannot see it.
        own = await s.act(rid, "approve", s.as_(CONSUMER, "dept_admin", "dept_reviewer"))
        assert own.status_code == 403 and own.json()["code"] == "own_request"
        other = s.as_(OTHER, "dept_reviewer")
        assert (await s.http.get(f"{API}/{rid}", headers=other)).status_code == 403
        assert (await s.act(rid, "approve", other)).status_code == 403
        assert (await s.http.get(API, headers=other)).json()["total"] == 0
        assert (await s.http.get(API, headers=other, params={"department": CONSUMER})).status_code == 403

        # A refusal without a reason is a field error and changes nothing.
        before = await s.counts()
        for body in ({}, {"reason": "  "}):
            refused = await s.act(rid, "reject", s.reviewer(), **body)
            assert refused.status_code == 422 and fields_of(refused) == {"reason": "required"}
        # An approval may only narrow what was asked for.
        wider = await s.act(rid, "approve", s.reviewer(), items=["XM", "QCD"], unmasked_items=["GMSFHM"])
        assert wider.status_code == 422
        assert fields_of(wider) == {"items": "not_requested", "unmasked_items": "not_granted"}
        assert await s.counts() == before

        approved = await s.act(
            rid, "approve", s.reviewer(), items=["XM"], unmasked_items=["XM"], conditions=["仅限本次业务使用"]
        )
        assert approved.status_code == 200, approved.text
        body = approved.json()
        assert body["state"] == "approved" and body["grant_id"]
        assert [h["action"] for h in body["history"]] == ["submitted", "approved"]
        grant = (await s.http.get(f"/api/v1/grants/{body['grant_id']}", headers=s.consumer())).json()
        assert grant["items"] == ["XM"] and grant["unmasked_items"] == ["XM"] and grant["status"] == "active"
        assert grant["valid_until"].startswith("2027-09-29T16:00:00")  # the validity asked for, in UTC

        issued = await s.events("grant.issued")
        assert len(issued) == 1
        assert set(issued[0]["data"]) == {
            "grant_id", "request_id", "consumer_code", "provider_code", "resource_id", "resource_code", "items",
            "unmasked_items", "purposes", "scope", "conditions", "valid_from", "valid_until", "consumer_platform",
        }  # fmt: skip
        assert issued[0]["data"]["consumer_platform"] is None  # a department of this platform, not a peer's
        assert issued[0]["data"]["purposes"] == ["business_collaboration"]
        assert issued[0]["data"]["conditions"] == ["仅限本次业务使用"]
        kinds = [e["type"] for e in await s.events("request.submitted", "request.approved")]
        assert kinds == ["request.submitted", "request.approved"]
        approved_event = (await s.events("request.approved"))[0]["data"]
        assert approved_event["due_date"] == "2026-10-12" and approved_event["state"] == "approved"

        # Decided once: a second decision is refused.
        again = await s.act(rid, "reject", s.reviewer(), reason="重复")
        assert again.status_code == 409

        # Zhonglou does not allow passing data to third parties.
        transfer = await s.http.post(
            f"/api/v1/grants/{body['grant_id']}/transfers",
            json={"third_party": "某科技公司", "purpose": "数据分析"},
            headers=s.consumer(),
        )
        assert transfer.status_code == 409 and transfer.json()["code"] == "transfer_not_allowed"


async def test_request_refused_unless_it_is_complete_and_for_conditional_data(stack) -> None:
    async with stack(profile="zhonglou") as s:
        open_code = await s.publish("unconditional", name="养老机构名录")
        conditional = await s.publish("conditional")
        before = await s.counts()

        direct = await s.submit(open_code)
        assert direct.status_code == 409 and direct.json()["code"] == "no_request_needed"
        assert "exchange" in direct.json()["message"] or "共享交换" in direct.json()["message"]

        bad = await s.submit(conditional, items=["XM", "NOPE"], purposes=["other"], scope=" ")
        assert bad.status_code == 422
        assert fields_of(bad) == {"items": "unknown_items", "purpose_other": "required", "scope": "required"}
        unknown = await s.submit("999999/000001")
        assert fields_of(unknown) == {"resource_code": "unknown_resource"}
        wrong_purpose = await s.submit(conditional, purposes=["curiosity"])
        assert wrong_purpose.status_code == 422
        own = await s.submit(conditional, headers=s.as_(PROVIDER, "dept_admin"))
        assert own.status_code == 409 and own.json()["code"] == "own_resource"
        no_dept = await s.submit(conditional, headers=s.office())
        assert no_dept.status_code == 403
        assert await s.counts() == before

        # A withdrawn resource takes no more requests once its withdrawal event has arrived.
        rid = await s.scalar("SELECT resource_id FROM resource_projection WHERE code = :c", c=conditional)
        withdrawn = await s.catalog.post(
            f"/api/v1/catalog/resources/{rid}/withdraw",
            json={"reason": "职能调整"},
            headers=s.as_(PROVIDER, "dept_admin"),
        )
        assert withdrawn.status_code == 200, withdrawn.text
        for _ in range(200):
            if await s.scalar("SELECT status FROM resource_projection WHERE code = :c", c=conditional) == "withdrawn":
                break
            await asyncio.sleep(0.05)
        assert fields_of(await s.submit(conditional)) == {"resource_code": "unknown_resource"}


async def test_more_information_stops_the_clock_for_the_days_the_consumer_took(stack) -> None:
    clock = FrozenClock(at("2026-09-29"))
    async with stack(clock, profile="xiangyang") as s:
        code = await s.publish("conditional")
        rid = (await s.submit(code)).json()["id"]
        assert (await s.http.get(f"{API}/{rid}", headers=s.consumer())).json()["due_date"] == "2026-10-19"

        clock.set(at("2026-09-30"))
        empty = await s.act(rid, "request-info", s.reviewer())
        assert empty.status_code == 422 and fields_of(empty) == {"question": "required"}
        asked = await s.act(rid, "request-info", s.reviewer(), question="请提供参保人员授权书")
        assert asked.status_code == 200 and asked.json()["state"] == "info_requested"
        assert asked.json()["awaiting"] == "consumer"
        # While the clock stands still the provider cannot decide and the job never marks it overdue.
        assert (await s.act(rid, "approve", s.reviewer())).status_code == 409
        clock.set(at("2026-10-20"))
        await s.run_job("request-deadlines")
        assert await s.events("request.overdue") == []
        assert (await s.act(rid, "provide-info", s.reviewer(), answer="x")).status_code == 403

        # The consumer answers on Friday 9 October: it took 10-08 and 10-09, two working days (the holiday
        # between does not count), so the due date moves from 10-19 by two working days to 10-21.
        clock.set(at("2026-10-09"))
        answered = await s.act(rid, "provide-info", s.consumer(), answer="已上传授权书")
        assert answered.status_code == 200, answered.text
        assert answered.json()["state"] == "submitted" and answered.json()["due_date"] == "2026-10-21"
        provided = (await s.events("request.info_provided"))[0]["data"]
        assert provided["paused_working_days"] == 2 and provided["previous_due_date"] == "2026-10-19"
        assert provided["due_date"] == "2026-10-21"
        assert (await s.events("request.info_requested"))[0]["data"]["question"] == "请提供参保人员授权书"

        approved = await s.act(rid, "approve", s.reviewer(), valid_until=(clock.now() + timedelta(days=30)).isoformat())
        assert approved.status_code == 200, approved.text


async def test_unanswered_request_is_overdue_on_the_first_working_day_after_its_due_date(stack) -> None:
    clock = FrozenClock(at("2026-09-29"))
    async with stack(clock, profile="zhonglou") as s:
        code = await s.publish("conditional")
        rid = (await s.submit(code)).json()["id"]  # due 2026-10-12

        clock.set(at("2026-10-09", "18:00"))  # two working days left (10-10, 10-12)
        await s.run_job("request-deadlines")
        assert await s.events("request.due_soon", "request.overdue") == []

        clock.set(at("2026-10-10", "09:00"))  # the make-up Saturday: one working day left
        await s.run_job("request-deadlines")
        await s.run_job("request-deadlines")
        soon = await s.events("request.due_soon")
        assert len(soon) == 1 and soon[0]["data"]["due_date"] == "2026-10-12"

        clock.set(at("2026-10-12", "23:30"))  # the due date itself is still in time
        await s.run_job("request-deadlines")
        assert await s.events("request.overdue") == []

        clock.set(at("2026-10-13", "08:00"))
        await s.run_job("request-deadlines")
        await s.run_job("request-deadlines")
        overdue = await s.events("request.overdue")
        assert len(overdue) == 1
        assert overdue[0]["subject"] == rid
        assert overdue[0]["data"]["days_late"] == 1 and overdue[0]["data"]["awaiting"] == "provider"
        assert overdue[0]["data"]["provider_code"] == PROVIDER and overdue[0]["data"]["actor"] == "system"

        detail = (await s.http.get(f"{API}/{rid}", headers=s.reviewer())).json()
        assert detail["overdue"] is True and detail["overdue_since"] == "2026-10-13"
        summary = (await s.http.get(f"{API}/overdue-summary", headers=s.office())).json()
        assert summary["items"] == [{"provider_code": PROVIDER, "overdue_requests": 1, "still_unanswered": 1}]
        assert (await s.http.get(f"{API}/overdue-summary", headers=s.reviewer())).status_code == 403
        # Late is still better than never: the provider can answer.
        assert (await s.act(rid, "reject", s.reviewer(), reason="数据涉及个人隐私")).status_code == 200
