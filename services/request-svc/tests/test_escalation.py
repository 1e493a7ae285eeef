"""After a refusal, or for not-shared data, the path each jurisdiction's rules give: negotiation, the
coordinator with its own deadline, Beijing's leading group. The coordinator's approval binds and issues a grant."""

from __future__ import annotations

from request_helpers import OTHER, PROVIDER, at, fields_of

from govshare_common.clock import FrozenClock

API = "/api/v1/requests"


async def test_xiangyang_written_application_to_the_coordinator_who_answers_in_ten_working_days(stack) -> None:
    clock = FrozenClock(at("2026-09-28"))
    async with stack(clock, profile="xiangyang") as s:
        code = await s.publish("conditional")
        rid = (await s.submit(code)).json()["id"]
        # Not yet refused: nothing to escalate.
        early = await s.act(rid, "escalate", s.consumer(), reason="急需")
        assert early.status_code == 409 and early.json()["code"] == "not_escalatable"
        assert (await s.act(rid, "reject", s.reviewer(), reason="超出共享条件")).json()["state"] == "rejected"

        clock.set(at("2026-09-29"))
        assert fields_of(await s.act(rid, "escalate", s.consumer())) == {"reason": "required"}
        assert (await s.act(rid, "escalate", s.reviewer(), reason="x")).status_code == 403
        # 市信息化办 takes a written application (Art.10): the reason alone is not one.
        unwritten = await s.act(rid, "escalate", s.consumer(), reason="社保转移依法需要核验户籍信息")
        assert fields_of(unwritten) == {"written_application": "required"}
        letter = "关于申请协调共享户籍迁移登记信息的函：我局办理社保关系转移接续，依法需核验户籍信息……"
        escalated = await s.act(
            rid, "escalate", s.consumer(), reason="社保转移依法需要核验户籍信息", written_application=letter
        )
        assert escalated.status_code == 200, escalated.text
        body = escalated.json()
        assert letter in body["history"][-1]["note"]
        assert body["state"] == "escalated" and body["awaiting"] == "platform_office"
        assert body["escalation_step"]["name"] == "coordinator" and body["escalation_step"]["deadline_wd"] == 10
        assert body["due_date"] == "2026-10-19"  # 10 wd from 9-29 across 国庆 and the make-up Saturday
        event = (await s.events("request.escalated"))[0]["data"]
        assert event["step"] == "coordinator" and event["due_date"] == "2026-10-19" and event["level"] == 0
        assert event["written_application"] is True

        # Now the provider has no say; the platform office decides, and its approval binds.
        refused = await s.act(rid, "approve", s.reviewer())
        assert refused.status_code == 403 and refused.json()["code"] == "coordinator_decides"
        worklist = (await s.http.get(f"{API}/worklist", headers=s.office())).json()
        assert [i["id"] for i in worklist["items"]] == [rid]
        assert (await s.http.get(f"{API}/worklist", headers=s.reviewer())).json()["total"] == 0

        decided = await s.act(rid, "approve", s.office(), items=["XM"], comment="经协调，同意共享姓名")
        assert decided.status_code == 200, decided.text
        assert decided.json()["state"] == "approved" and decided.json()["grant_id"]
        event = (await s.events("request.decided"))[0]["data"]
        assert event["binding"] is True and event["outcome"] == "approve" and event["step"] == "coordinator"
        assert event["grant_id"] == decided.json()["grant_id"]
        issued = (await s.events("grant.issued"))[0]["data"]
        assert issued["items"] == ["XM"] and issued["request_id"] == rid

        # A coordinator's refusal is final in Xiangyang: there is no further level.
        rid2 = (await s.submit(code)).json()["id"]
        await s.act(rid2, "reject", s.reviewer(), reason="超出共享条件")
        await s.act(rid2, "escalate", s.consumer(), reason="请协调", written_application=letter)
        assert (await s.act(rid2, "reject", s.office())).status_code == 422
        assert (await s.act(rid2, "reject", s.office(), reason="确无共享依据")).json()["state"] == "rejected"
        final = await s.act(rid2, "escalate", s.consumer(), reason="再次申请", written_application=letter)
        assert final.status_code == 409 and final.json()["code"] == "no_further_escalation"


async def test_zhonglou_not_shared_data_goes_straight_to_negotiation_which_is_the_only_step(stack) -> None:
    clock = FrozenClock(at("2026-11-02"))
    async with stack(clock, profile="zhonglou") as s:
        code = await s.publish("not_shared")
        created = await s.submit(code)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["state"] == "escalated" and body["escalation_step"]["name"] == "negotiation"
        assert body["awaiting"] == "provider" and body["due_date"] is None  # the seed sets no time for it
        assert (await s.events("request.submitted"))[0]["data"]["escalation_level"] == 0
        # The provider negotiates: it is on the provider's worklist, and the platform office does not decide.
        assert [i["id"] for i in (await s.http.get(f"{API}/worklist", headers=s.reviewer())).json()["items"]] == [
            body["id"]
        ]
        assert (await s.act(body["id"], "approve", s.office())).status_code == 403
        rejected = await s.act(body["id"], "reject", s.reviewer(), reason="涉及侦查秘密")
        assert rejected.json()["state"] == "rejected"
        assert (await s.events("request.decided"))[0]["data"]["binding"] is False
        final = await s.act(body["id"], "escalate", s.consumer(), reason="请协调")
        assert final.status_code == 409 and final.json()["code"] == "no_further_escalation"


async def test_beijing_coordinator_then_leading_group(stack) -> None:
    clock = FrozenClock(at("2026-11-02"))
    async with stack(clock, profile="beijing") as s:
        code = await s.publish("conditional")
        rid = (await s.submit(code)).json()["id"]
        assert (await s.http.get(f"{API}/{rid}", headers=s.consumer())).json()["due_date"] == "2026-11-16"
        await s.act(rid, "reject", s.reviewer(), reason="不符合共享条件")
        first = (await s.act(rid, "escalate", s.consumer(), reason="请领导小组办公室协调")).json()
        assert first["escalation_step"]["name"] == "coordinator"
        await s.act(rid, "reject", s.office(), reason="维持原决定")
        second = await s.act(rid, "escalate", s.consumer(), reason="报领导小组审议")
        assert second.status_code == 200
        assert second.json()["escalation_step"]["name"] == "leading_group"
        assert second.json()["escalation_step"]["label"] == "报领导小组审议"
        approved = await s.act(rid, "approve", s.office(), comment="领导小组审议同意")
        assert approved.json()["state"] == "approved"
        steps = [e["data"]["step"] for e in await s.events("request.escalated")]
        assert steps == ["coordinator", "leading_group"]


async def test_worklist_puts_requests_due_within_a_working_day_first(stack) -> None:
    clock = FrozenClock(at("2026-11-02"))  # Monday
    async with stack(clock, profile="zhonglou") as s:
        code = await s.publish("conditional")
        other_code = await s.publish("conditional", department=OTHER, name="婚姻登记信息")
        ids = []
        for day in ("2026-11-02", "2026-11-03", "2026-11-04"):
            clock.set(at(day))
            ids.append((await s.submit(code)).json()["id"])  # due 11-09, 11-10, 11-11
        await s.submit(other_code)  # another provider's: not on this worklist
        clock.set(at("2026-11-09", "09:00"))  # one working day before 11-10; 11-09 is due today
        items = (await s.http.get(f"{API}/worklist", headers=s.reviewer())).json()["items"]
        assert [i["id"] for i in items] == ids
        assert [i["due_soon"] for i in items] == [True, True, False]
        # Listing filters by state and by the department's role.
        mine = (await s.http.get(API, headers=s.reviewer(), params={"role": "provider", "state": "submitted"})).json()
        assert mine["total"] == 3 and mine["limit"] == 20 and mine["offset"] == 0
        assert (await s.http.get(API, headers=s.reviewer(), params={"role": "consumer"})).json()["total"] == 0
        assert (await s.http.get(API, headers=s.office())).json()["total"] == 4
        auditor = s.as_(None, "auditor")
        assert (await s.http.get(API, headers=auditor, params={"department": PROVIDER})).json()["total"] == 3
        assert (await s.act(ids[0], "reject", auditor, reason="x")).status_code == 403
