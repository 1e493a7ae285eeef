"""Entering a year's holidays recounts the disputes' and the open-data demands' deadlines too (issue 17 items 3
and 10): a dispute and a demand opened on 2026-12-28 under Beijing's profile (5 and 15 working days) fall due
in 2027, a year the calendar did not know; the new 元旦 holiday moves each out, and each move is an event."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from gateway_helpers import bearer
from published_resources import RESOURCE, publish
from sqlalchemy import text

from govshare_common.clock import FrozenClock
from govshare_common.testing import eventually, eventually_equals
from govshare_common.workdays import CHINA_TZ
from govshare_stack.demo_steps import departments

from catalog_svc.demo import CIVIL, PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

OPENED = "2026-12-28"
ZHANG = "11010519491231002X"


async def deadline(http: httpx.AsyncClient, admin: dict[str, str], working_days: int) -> str:
    r = await http.get(
        "/api/v1/platform/calendar/deadline", params={"start": OPENED, "working_days": working_days}, headers=admin
    )
    assert r.status_code == 200, r.text
    return str(r.json()["due"])


async def client_bearer(http: httpx.AsyncClient, creds: dict[str, Any], department_name: str) -> dict[str, str]:
    client = next(c for c in creds["clients"].values() if c["department"] == department_name)
    r = await http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert r.status_code == 200, r.text
    return bearer(r.json()["access_token"])


async def outbox_types(app: Any, pattern: str) -> list[str]:
    async with app.state.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT type FROM outbox WHERE type LIKE :p ORDER BY id"), {"p": pattern})
        return [r.type for r in rows]


async def test_a_new_years_holidays_recount_open_disputes_and_open_data_demands(platform) -> None:
    clock = FrozenClock(datetime(2026, 12, 28, 10, 0, tzinfo=CHINA_TZ))
    async with (
        platform(
            "gateway", "catalog", "request", "exchange", profile="beijing", clocks={"request": clock, "exchange": clock}
        ) as p,
        p.client() as http,
    ):
        ex = p.apps["exchange"]
        admin_token = await p.token()
        admin = bearer(admin_token)
        creds = await seed_identities(http, admin_token, departments())
        psb = bearer(await p.token("gaj_admin", DEMO_PASSWORD))
        unconditional = {**RESOURCE, "share_type": "unconditional", "share_conditions": None}
        code = await publish(http, unconditional, dept_admin=psb, platform_admin=admin)
        base = f"/api/v1/exchange/resources/{quote(code, safe='')}"

        async def exchange_knows() -> bool:
            async with ex.state.db.engine.connect() as conn:
                if not (await conn.execute(text("SELECT count(*) FROM resource"))).scalar():
                    return False
            # and the door's decision service, which refuses a resource it has not seen published
            return code in p.apps["gateway"].state.live.resources

        await eventually(exchange_knows)
        row = {"GMSFHM": ZHANG, "XM": "张三", "HJDZ": "北京市东城区东华门街道1号", "MZ": "01"}
        sent = await http.post(
            f"{base}/batches",
            params={"batch_id": "recount-1"},
            content=(json.dumps(row, ensure_ascii=False) + "\n").encode(),
            headers=await client_bearer(http, creds, PSB.name),
        )
        assert sent.status_code == 200, sent.text
        consumer = {**await client_bearer(http, creds, CIVIL.name), "X-Govshare-Purpose": "data_verification"}
        dispute = await http.post(
            f"{base}/disputes",
            json={"subject": ZHANG, "item": "XM", "reason": "与低保申请材料中的姓名不一致"},
            headers=consumer,
        )
        assert dispute.status_code == 201, dispute.text
        demand = await http.post(
            "/api/v1/requests/open-data-demands",
            json={
                "resource_code": code,
                "subject": "希望开放户籍人口民族构成统计",
                "content": "按街道汇总的民族人口数量。",
                "requester_name": "王某",
                "requester_contact": "010-12345678",
            },
        )
        assert demand.status_code == 201, demand.text
        by_weekends = (await deadline(http, admin, 5), await deadline(http, admin, 15))
        assert (dispute.json()["due_date"], demand.json()["due_on"]) == by_weekends

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
        expected = (await deadline(http, admin, 5), await deadline(http, admin, 15))
        assert expected != by_weekends  # 元旦 falls inside both

        async def dispute_due() -> str:
            r = await http.get(f"/api/v1/exchange/disputes/{dispute.json()['id']}", headers=consumer)
            return str(r.json()["due_date"])

        async def demand_due() -> str:
            r = await http.get(f"/api/v1/requests/open-data-demands/{demand.json()['id']}", headers=admin)
            return str(r.json()["due_on"])

        await eventually_equals(dispute_due, expected[0], timeout=15.0)
        await eventually_equals(demand_due, expected[1], timeout=15.0)
        assert await outbox_types(ex, "exchange.dispute.deadline_moved") == ["exchange.dispute.deadline_moved"]
        assert await outbox_types(p.apps["request"], "open_data_demand.deadline_moved") == [
            "open_data_demand.deadline_moved"
        ]
