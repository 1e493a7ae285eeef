"""Entering a year's holidays recounts every stored deadline that was counted by weekends only, not just the
share requests' (issue 17 item 10): a catalog update obligation, a rectification notice and a written
complaint, all opened on 2026-12-24 with their due dates in 2027 — a year the calendar did not know — move out
by the new 元旦 holiday, and each move is an event. Run under Hainan's profile, which takes written complaints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from gateway_helpers import bearer
from sqlalchemy import text

from govshare_common.clock import FrozenClock
from govshare_common.testing import eventually, eventually_equals
from govshare_common.workdays import CHINA_TZ
from govshare_stack.demo_steps import departments

from catalog_svc.demo import HRSS, PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

OPENED = "2026-12-24"


async def deadline(http: httpx.AsyncClient, admin: dict[str, str], working_days: int) -> str:
    r = await http.get(
        "/api/v1/platform/calendar/deadline", params={"start": OPENED, "working_days": working_days}, headers=admin
    )
    assert r.status_code == 200, r.text
    return str(r.json()["due"])


async def outbox_types(app: Any, prefix: str) -> list[str]:
    async with app.state.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT type FROM outbox WHERE type LIKE :p"), {"p": f"{prefix}%"})
        return sorted(r.type for r in rows)


async def test_a_new_years_holidays_recount_obligations_notices_and_complaints(platform) -> None:
    clock = FrozenClock(datetime(2026, 12, 24, 10, 0, tzinfo=CHINA_TZ))
    async with (
        platform("gateway", "catalog", "audit", profile="hainan", clocks={"catalog": clock, "audit": clock}) as p,
        p.client() as http,
    ):
        admin_token = await p.token()
        await seed_identities(http, admin_token, departments())
        short = {code: s for code, _n, s in departments()}
        admin = bearer(admin_token)
        psb = bearer(await p.token(f"{short[PSB.code]}_admin", DEMO_PASSWORD))
        counted_by_weekends = (await deadline(http, admin, 15), await deadline(http, admin, 10))

        obligation = await http.post(
            "/api/v1/catalog/obligations",
            json={"department_code": PSB.code, "reason": "law_revised", "description": "《海南自由贸易港法》施行"},
            headers=admin,
        )
        assert obligation.status_code == 201, obligation.text
        assert obligation.json()["due_on"] == counted_by_weekends[0]
        assert obligation.json()["due_unknown_years"] == [2027]

        async def reported() -> dict[str, Any] | None:
            r = await http.post(
                "/api/v1/supervision/violations",
                json={"department_code": HRSS.code, "resource_code": "101001/000001", "description": "超出用途使用"},
                headers=psb,
            )
            return r.json() if r.status_code == 201 else None

        notice = await eventually(reported, timeout=15.0)
        assert notice["due_on"] == counted_by_weekends[1]
        complaint = await http.post(
            "/api/v1/supervision/complaints",
            json={
                "complainant_name": "王某",
                "complainant_contact": "0898-12345678",
                "department_code": PSB.code,
                "subject": "户籍证明重复提交",
                "content": "办理业务时被要求重复提交已共享的户籍证明。",
                "received_on": OPENED,
                "channel": "letter",
            },
            headers=admin,
        )
        assert complaint.status_code == 201, complaint.text
        assert complaint.json()["due_on"] == counted_by_weekends[0]

        entered = await http.put(
            "/api/v1/platform/calendar/years/2027",
            json={
                "notice": "国务院办公厅关于2027年部分节假日安排的通知（测试用）",
                "holidays": [{"day": "2027-01-01", "name": "元旦"}],
                "makeup_workdays": [],
            },
            headers=admin,
        )
        assert entered.status_code == 200, entered.text
        expected = (await deadline(http, admin, 15), await deadline(http, admin, 10))
        assert expected != counted_by_weekends  # the new holiday falls inside every one of them

        async def obligation_due() -> tuple[str, list[int]]:
            o = (await http.get(f"/api/v1/catalog/obligations/{obligation.json()['id']}", headers=admin)).json()
            return o["due_on"], o["due_unknown_years"]

        async def notice_due() -> str:
            r = await http.get(f"/api/v1/supervision/notices/{notice['id']}", headers=admin)
            return str(r.json()["due_on"])

        async def complaint_due() -> str:
            r = await http.get(f"/api/v1/supervision/complaints/{complaint.json()['id']}", headers=admin)
            return str(r.json()["due_on"])

        await eventually_equals(obligation_due, (expected[0], []), timeout=15.0)
        await eventually_equals(notice_due, expected[1], timeout=15.0)
        await eventually_equals(complaint_due, expected[0], timeout=15.0)
        assert "catalog.obligation.deadline_moved" in await outbox_types(p.apps["catalog"], "catalog.obligation.")
        assert await outbox_types(p.apps["audit"], "audit.%deadline_moved") == [
            "audit.complaint.deadline_moved",
            "audit.notice.deadline_moved",
        ]
