"""Disputes run their lifecycle against a working-day deadline; a resource is flagged stale after its cycle."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import chinese_calendar
from exchange_helpers import API, HRSS, LI, PSB, ZHANG, error_shape, jsonl, path, person, resource_body

from govshare_common.clock import FrozenClock

from exchange_svc.jobs import DISPUTES_JOB, FRESHNESS_JOB


def nth_working_day_after(start: date, n: int) -> date:
    """An independent oracle: the statutory calendar as chinesecalendar publishes it."""
    d, counted = start, 0
    while counted < n:
        d += timedelta(days=1)
        counted += chinese_calendar.is_workday(d)
    return d


async def test_dispute_lifecycle_with_its_deadline_and_the_authority_copied_in_beijing(exchange) -> None:
    # Tuesday before National Day: the five working days run over the holiday and a make-up Saturday.
    clock = FrozenClock(datetime(2026, 9, 29, 2, 0, tzinfo=UTC))
    async with exchange(clock=clock, profile="beijing") as x:
        code = await x.publish(resource_body())
        await x.http.post(
            path(code, "batches"),
            params={"batch_id": "b1"},
            content=jsonl([person(ZHANG, "张三"), person(LI, "李四")]),
            headers=x.system(PSB),
        )
        await x.grant(HRSS, PSB, code, items=["GMSFHM", "XM", "HJDZ"], unmasked=["GMSFHM"])
        consumer = x.system(HRSS, "data_verification")

        outside = await x.http.post(
            path(code, "disputes"), json={"subject": ZHANG, "item": "LXDH", "reason": "号码错"}, headers=consumer
        )
        assert outside.status_code == 422 and error_shape(outside)["code"] == "item_not_granted"
        opened = await x.http.post(
            path(code, "disputes"),
            json={"subject": ZHANG, "item": "XM", "reason": "户籍证明显示姓名为张叄"},
            headers=consumer,
        )
        assert opened.status_code == 201, opened.text
        first = opened.json()
        beijing_wd = 5  # the platform default; no seed sets a number
        assert first["due_date"] == nth_working_day_after(date(2026, 9, 29), beijing_wd).isoformat() == "2026-10-12"
        assert first["state"] == "open" and first["copied_to_authority"] is True
        second = (
            await x.http.post(
                path(code, "disputes"), json={"subject": LI, "item": "HJDZ", "reason": "已迁出"}, headers=consumer
            )
        ).json()

        # Meanwhile the record is served, marked disputed.
        served = (await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=consumer)).json()
        assert served["items"][0]["marks"] == {"XM": "disputed"}
        # The provider and the copied platform office see it; another consumer does not answer it.
        assert (await x.http.get(f"{API}/disputes", headers=x.admin(PSB))).json()["total"] == 2
        assert (await x.http.get(f"{API}/disputes", headers=x.platform())).json()["total"] == 2
        not_provider = await x.http.post(
            f"{API}/disputes/{first['id']}/confirm", json={"answer": "无误"}, headers=consumer
        )
        assert not_provider.status_code == 403

        # On the due date it is not late; the day after it is.
        clock.set(datetime(2026, 10, 12, 15, 0, tzinfo=UTC))  # 23:00 in China, still the due date
        await x.run_job(DISPUTES_JOB)
        assert (await x.http.get(f"{API}/disputes/{first['id']}", headers=x.admin(PSB))).json()["state"] == "open"
        clock.set(datetime(2026, 10, 12, 16, 30, tzinfo=UTC))  # 00:30 on the 13th in China
        await x.run_job(DISPUTES_JOB)
        assert (await x.http.get(f"{API}/disputes/{first['id']}", headers=x.admin(PSB))).json()["state"] == "overdue"

        # Still answerable when overdue: correct the first, confirm the second.
        corrected = await x.http.post(
            f"{API}/disputes/{first['id']}/correct",
            json={"value": "张叄", "answer": "已按户籍证明更正"},
            headers=x.admin(PSB),
        )
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["state"] == "corrected"
        confirmed = await x.http.post(
            f"{API}/disputes/{second['id']}/confirm", json={"answer": "经核实无误"}, headers=x.admin(PSB)
        )
        assert confirmed.json()["state"] == "answered"
        again = await x.http.post(
            f"{API}/disputes/{second['id']}/confirm", json={"answer": "再次"}, headers=x.admin(PSB)
        )
        assert again.status_code == 409

        served = (await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=consumer)).json()
        assert served["items"][0]["data"]["XM"] == "张*" and served["items"][0]["marks"] == {}
        own = (await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=x.system(PSB))).json()
        assert own["items"][0]["data"]["XM"] == "张叄"

        steps = [
            (t.rsplit(".", 1)[1], e["dispute_id"] == first["id"], e["copied_to_authority"])
            for t in (
                "exchange.dispute.opened",
                "exchange.dispute.overdue",
                "exchange.dispute.corrected",
                "exchange.dispute.answered",
            )
            for e in await x.events(t)
        ]
        assert steps == [
            ("opened", True, True),
            ("opened", False, True),
            ("overdue", True, True),
            ("overdue", False, True),
            ("corrected", True, True),
            ("answered", False, True),
        ]


async def test_a_resource_is_flagged_stale_after_its_cycle_and_fresh_again_after_an_ingest(exchange) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    async with exchange(clock=clock) as x:
        weekly = await x.publish(resource_body(update_cycle="weekly"))
        irregular = await x.publish(resource_body(name="不定期资源", subcategory_code="009", update_cycle="irregular"))
        await x.http.post(
            path(weekly, "batches"),
            params={"batch_id": "w1"},
            content=jsonl([person(ZHANG, "张三")]),
            headers=x.system(PSB),
        )

        clock.advance(timedelta(days=7))
        await x.run_job(FRESHNESS_JOB)
        assert await x.events("exchange.resource.stale") == []  # exactly one cycle: not late yet

        clock.advance(timedelta(hours=1))
        await x.run_job(FRESHNESS_JOB)
        await x.run_job(FRESHNESS_JOB)  # flagged once, not every tick
        stale = await x.events("exchange.resource.stale")
        assert [(s["resource_code"], s["update_cycle"], s["provider_code"]) for s in stale] == [(weekly, "weekly", PSB)]
        assert datetime.fromisoformat(stale[0]["due_at"]) == datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
        listed = (await x.http.get(f"{API}/resources", params={"stale": "true"}, headers=x.platform())).json()
        assert [r["code"] for r in listed["items"]] == [weekly] and irregular not in str(listed)

        await x.http.post(
            path(weekly, "batches"),
            params={"batch_id": "w2"},
            content=jsonl([person(LI, "李四")]),
            headers=x.system(PSB),
        )
        listed = (await x.http.get(f"{API}/resources", params={"stale": "true"}, headers=x.platform())).json()
        assert listed["total"] == 0
