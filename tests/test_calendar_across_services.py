"""The working-day calendar: one master at the gateway, the same answers in every service."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import text

NOTICE_2027 = {
    "notice": "国务院办公厅关于2027年部分节假日安排的通知（测试用）",
    "holidays": [{"day": "2027-01-01", "name": "元旦"}, {"day": "2027-01-04", "name": "元旦"}],
    "makeup_workdays": [{"day": "2027-01-09", "name": "元旦"}],
}


async def test_deadline_into_unknown_year_is_flagged_until_the_notice_is_entered(platform) -> None:
    async with platform("gateway", "catalog") as p:
        token = await p.token()
        auth = {"Authorization": f"Bearer {token}"}
        async with p.client() as http:
            before = await http.get(
                "/api/v1/platform/calendar/deadline", params={"start": "2026-12-24", "working_days": 10}, headers=auth
            )
            assert before.status_code == 200
            assert before.json()["unknown_years"] == [2027]
            assert before.json()["due"] == "2027-01-07"  # weekends only

            entered = await http.put("/api/v1/platform/calendar/years/2027", json=NOTICE_2027, headers=auth)
            assert entered.status_code == 200, entered.text

            after = await http.get(
                "/api/v1/platform/calendar/deadline", params={"start": "2026-12-24", "working_days": 10}, headers=auth
            )
            # 2027-01-01 (Fri) and 01-04 (Mon) off, Sat 01-09 worked: 12-25,28,29,30,31, 01-05,06,07,08,09
            assert after.json() == {"start": "2026-12-24", "working_days": 10, "due": "2027-01-09", "unknown_years": []}

        gateway_db = p.apps["gateway"].state.db
        async with gateway_db.engine.connect() as conn:
            types = [
                r[0]
                for r in await conn.execute(text("SELECT type FROM outbox WHERE type <> 'gateway.access' ORDER BY id"))
            ]
        assert types == ["platform.calendar.year_unknown", "platform.calendar.year_published"]

        # The catalog service learns the year from the gateway's event, through Kafka and its inbox.
        catalog_calendar = p.apps["catalog"].state.calendar
        for _ in range(100):
            catalog_calendar._loaded_at = 0.0
            if 2027 in (await catalog_calendar.current()).known_years:
                break
            await asyncio.sleep(0.1)
        cal = await catalog_calendar.current()
        assert cal.add_working_days(date(2026, 12, 24), 10).due == date(2027, 1, 9)
        assert not cal.is_working_day(date(2027, 1, 4))


async def test_only_platform_admin_enters_a_year_and_bad_notices_get_field_errors(platform) -> None:
    async with platform("gateway") as p:
        token = await p.token()
        async with p.client() as http:
            anonymous = await http.put("/api/v1/platform/calendar/years/2027", json=NOTICE_2027)
            assert anonymous.status_code == 401
            assert set(anonymous.json()) == {"code", "message", "details", "trace_id"}

            bad = {"holidays": [{"day": "2028-01-03"}], "makeup_workdays": [{"day": "2027-01-05"}]}
            resp = await http.put(
                "/api/v1/platform/calendar/years/2027",
                json=bad,
                headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
            )
            assert resp.status_code == 422
            body = resp.json()
            assert body["code"] == "validation_failed"
            assert body["message"].startswith("The notice has errors")
            assert {f["field"] for f in body["details"]["fields"]} == {"holidays.0.day", "makeup_workdays.0.day"}

        async with p.apps["gateway"].state.db.engine.connect() as conn:
            years = {r[0] for r in await conn.execute(text("SELECT year FROM calendar_year"))}
            events = (
                await conn.execute(text("SELECT count(*) FROM outbox WHERE type <> 'gateway.access'"))
            ).scalar_one()
        assert 2027 not in years
        assert events == 0
