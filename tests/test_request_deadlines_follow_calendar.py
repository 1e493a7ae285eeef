"""A running share-request deadline follows the calendar: when the platform office enters a holiday inside
it, request-svc recounts it (through the gateway's calendar event) and the due date moves out a working day."""

from __future__ import annotations

from typing import Any

import httpx
from gateway_helpers import bearer
from published_resources import demo_catalog
from sqlalchemy import text

from govshare_common.testing import eventually, eventually_equals

from catalog_svc.demo import HRSS, PLATFORM_ADMIN


async def first_working_day_after(http: httpx.AsyncClient, token: str, day: str) -> str:
    r = await http.get(
        "/api/v1/platform/calendar/deadline", params={"start": day, "working_days": 1}, headers=bearer(token)
    )
    return str(r.json()["due"])


async def add_holiday(http: httpx.AsyncClient, token: str, day: str) -> None:
    year = int(day[:4])
    known = (await http.get(f"/api/v1/platform/calendar/years/{year}", headers=bearer(token))).json()
    notice = {
        "notice": "关于调整部分节假日安排的通知（测试用）",
        "holidays": [*known["holidays"], {"day": day, "name": "临时放假"}],
        "makeup_workdays": known["makeup_workdays"],
    }
    r = await http.put(f"/api/v1/platform/calendar/years/{year}", json=notice, headers=bearer(token))
    assert r.status_code == 200, r.text


async def test_a_holiday_entered_inside_a_deadline_moves_the_due_date(platform) -> None:
    async with platform("gateway", "catalog", "request") as p, p.client() as http:
        tokens = await demo_catalog(p, http)
        admin, consumer = tokens[PLATFORM_ADMIN], tokens[HRSS.code]
        found = (await http.get("/api/v1/catalog/resources", params={"limit": 200}, headers=bearer(admin))).json()
        code = next(i["code"] for i in found["items"] if i["name"] == "户籍迁移登记信息")
        body: dict[str, Any] = {
            "resource_code": code,
            "items": ["GMSFHM", "XM"],
            "purposes": ["business_collaboration"],
            "scope": "社保转移经办人员",
            "security_measures": "政务外网访问，全程留痕",
            "business_matter": "社会保险关系转移接续",
        }

        async def submitted() -> httpx.Response | None:
            r = await http.post("/api/v1/requests", json=body, headers=bearer(consumer))
            return r if r.status_code == 201 else None  # once request-svc has read the catalog's events

        request = (await eventually(submitted, timeout=15.0)).json()
        due, submitted_on = request["due_date"], request["submitted_on"]

        holiday = await first_working_day_after(http, admin, submitted_on)
        assert holiday <= due  # the new holiday falls inside the running deadline
        await add_holiday(http, admin, holiday)
        expected = await first_working_day_after(http, admin, due)

        async def shown_due() -> Any:
            r = await http.get(f"/api/v1/requests/{request['id']}", headers=bearer(consumer))
            return r.json()["due_date"]

        await eventually_equals(shown_due, expected, timeout=15.0)
        detail = (await http.get(f"/api/v1/requests/{request['id']}", headers=bearer(consumer))).json()
        assert detail["history"][-1]["action"] == "deadline_moved"
        assert detail["history"][-1]["due_date"] == expected

        async def emitted() -> list[Any]:
            async with p.apps["request"].state.db.engine.connect() as conn:
                rows = await conn.execute(text("SELECT data FROM outbox WHERE type = 'request.deadline_moved'"))
                return [row.data for row in rows]

        (event,) = await eventually(emitted)
        assert event["previous_due_date"] == due and event["due_date"] == expected
        assert event["calendar_year"] == int(holiday[:4])
