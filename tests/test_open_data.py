"""Open data through the real platform (003 Art.25-27, 004 Art.20-23; the profile's `open_data`): the public,
without any account, reads the data of the resources the catalog opens — JSON or CSV, internal items left out,
personal ones desensitised by their masking rule — at a limited rate; a resource not opened is not served, and
where the profile opens no data nothing is."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import quote

import httpx
from gateway_helpers import bearer
from published_resources import RESOURCE
from sqlalchemy import text

from govshare_common.identifiers import resident_id_check_char
from govshare_common.testing import eventually
from govshare_stack.demo_steps import departments

from catalog_svc.demo import PSB
from exchange_svc.domain.open_data import CALLS_PER_MINUTE
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

ZHANG = "11010519491231002X"
LI = "32040419800101001" + resident_id_check_char("32040419800101001")
OPENED = {
    **RESOURCE,
    "name": "户籍人口民族构成信息",
    "share_type": "unconditional",
    "share_conditions": None,
    "open_to_public": True,
    "open_conditions": "脱敏后向社会开放",
    "data_items": [
        {**RESOURCE["data_items"][0]},  # GMSFHM, personal, masked as an ID number
        {**RESOURCE["data_items"][1]},  # XM, personal, masked as a name
        {**RESOURCE["data_items"][2], "sensitivity": "internal", "masking_rule": "none"},  # HJDZ stays inside
        {**RESOURCE["data_items"][3]},  # MZ, public
    ],
}
CLOSED = {**RESOURCE, "name": "户籍人口登记信息（不开放）", "share_type": "unconditional", "share_conditions": None}
ROWS = [
    {"GMSFHM": ZHANG, "XM": "张三", "HJDZ": "北京市东城区东华门街道1号", "MZ": "01"},
    {"GMSFHM": LI, "XM": "李四", "HJDZ": "北京市西城区金融大街5号", "MZ": "02"},
]


async def publish(http: httpx.AsyncClient, body: dict[str, Any], dept: dict[str, str], admin: dict[str, str]) -> str:
    rid = (await http.post("/api/v1/catalog/resources", json=body, headers=dept)).json()["id"]
    assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=dept)).status_code == 200
    r = await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


async def test_the_public_reads_open_data_desensitised_as_json_and_csv_at_a_limited_rate(platform) -> None:
    async with platform("gateway", "catalog", "exchange", profile="beijing") as p, p.client() as http:
        ex = p.apps["exchange"]
        admin_token = await p.token()
        admin = bearer(admin_token)
        creds = await seed_identities(http, admin_token, departments())
        psb = bearer(await p.token("gaj_admin", DEMO_PASSWORD))
        opened = await publish(http, OPENED, psb, admin)
        closed = await publish(http, CLOSED, psb, admin)

        async def exchange_knows_both() -> bool:
            async with ex.state.db.engine.connect() as conn:
                return (await conn.execute(text("SELECT count(*) FROM resource"))).scalar() == 2

        await eventually(exchange_knows_both)
        client = next(c for c in creds["clients"].values() if c["department"] == PSB.name)
        token = await http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            },
        )
        provider = bearer(token.json()["access_token"])
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS).encode()
        for code in (opened, closed):
            sent = await http.post(
                f"/api/v1/exchange/resources/{quote(code, safe='')}/batches",
                params={"batch_id": "open-1"},
                content=body,
                headers=provider,
            )
            assert sent.status_code == 200, sent.text

        async with p.client() as public:  # no token at all
            url = f"/api/v1/exchange/open/{quote(opened, safe='')}/records"
            got = await public.get(url)
            assert got.status_code == 200, got.text
            assert got.json()["total"] == 2
            assert sorted((i for i in got.json()["items"]), key=lambda i: i["MZ"]) == [
                {"GMSFHM": "110105********002X", "XM": "张*", "MZ": "01"},
                {"GMSFHM": LI[:6] + "********" + LI[-4:], "XM": "李*", "MZ": "02"},
            ]
            sheet = await public.get(url, params={"format": "csv"})
            assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
            lines = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
            assert lines[0] == ["GMSFHM", "XM", "MZ"]
            assert sorted(lines[1:]) == sorted(
                [["110105********002X", "张*", "01"], [LI[:6] + "********" + LI[-4:], "李*", "02"]]
            )
            assert "张三" not in sheet.text and "东华门" not in sheet.text

            not_open = await public.get(f"/api/v1/exchange/open/{quote(closed, safe='')}/records")
            assert not_open.status_code == 404 and not_open.json()["code"] == "not_open_data"
            assert set(not_open.json()) == {"code", "message", "details", "trace_id"}

            # Four calls above; the limit is per minute, so a turn of the minute meanwhile allows one window more.
            served = 0
            limited = await public.get(url, params={"limit": 1})
            while limited.status_code == 200 and served < 2 * CALLS_PER_MINUTE:
                served += 1
                limited = await public.get(url, params={"limit": 1})
            assert CALLS_PER_MINUTE - 4 <= served < 2 * CALLS_PER_MINUTE
            assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
            assert int(limited.headers["Retry-After"]) >= 1


async def test_no_open_data_where_the_profile_opens_none(platform) -> None:
    async with platform("exchange", profile="zhonglou") as p, p.client("exchange") as public:
        r = await public.get(f"/api/v1/exchange/open/{quote('101001/000001', safe='')}/records")
        assert r.status_code == 404 and r.json()["code"] == "open_data_off"
