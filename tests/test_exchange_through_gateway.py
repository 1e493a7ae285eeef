"""Exchange behind the gateway: a provider's batch goes in through the door; a consumer without a grant is refused
at the door and again by exchange-svc when it calls the service directly; once the provider approves its share
request in request-svc, it receives only the granted items, masked as the grant says."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from published_resources import RESOURCE
from sqlalchemy import text

from govshare_common.identifiers import resident_id_check_char
from govshare_common.testing import eventually
from govshare_stack.demo_steps import departments

from catalog_svc.demo import CIVIL, PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

ZHANG = "11010519491231002X"
LI = "32040419800101001" + resident_id_check_char("32040419800101001")


async def client_bearer(http: Any, creds: dict[str, Any], department_name: str) -> dict[str, str]:
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
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_batch_in_and_granted_masked_query_out_through_the_gateway(platform) -> None:
    async with platform("gateway", "catalog", "request", "exchange") as p:
        gw, ex = p.apps["gateway"], p.apps["exchange"]
        async with p.client() as http:
            admin_token = await p.token()
            admin = {"Authorization": f"Bearer {admin_token}"}
            creds = await seed_identities(http, admin_token, departments())
            psb_admin = {"Authorization": f"Bearer {await p.token('gaj_admin', DEMO_PASSWORD)}"}
            civil_admin = {"Authorization": f"Bearer {await p.token('mzj_admin', DEMO_PASSWORD)}"}
            provider = await client_bearer(http, creds, PSB.name)
            consumer = {**await client_bearer(http, creds, CIVIL.name), "X-Govshare-Purpose": "data_verification"}

            rid = (await http.post("/api/v1/catalog/resources", json=RESOURCE, headers=psb_admin)).json()["id"]
            assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=psb_admin)).status_code == 200
            code = (await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)).json()["code"]
            await eventually(lambda: asyncio.sleep(0, code in gw.state.live.resources))
            base = f"/api/v1/exchange/resources/{quote(code, safe='')}"

            async def exchange_knows() -> bool:
                async with ex.state.db.engine.connect() as conn:
                    return bool((await conn.execute(text("SELECT count(*) FROM resource"))).scalar())

            await eventually(exchange_knows)
            rows = [
                {"GMSFHM": ZHANG, "XM": "张三", "HJDZ": "江苏省常州市钟楼区南大街1号", "MZ": "01"},
                {"GMSFHM": LI, "XM": "李四", "HJDZ": "江苏省常州市钟楼区西新桥二村5幢", "MZ": "01"},
            ]
            body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
            sent = await http.post(f"{base}/batches", params={"batch_id": "2026-11-21"}, content=body, headers=provider)
            assert sent.status_code == 200, sent.text
            assert sent.json()["inserted"] == 2

            # No grant: refused at the door, and by exchange-svc itself when called directly.
            refused = await http.get(f"{base}/records", params={"subject": ZHANG}, headers=consumer)
            assert refused.status_code == 403 and refused.json()["details"]["reason"] == "no_live_grant"
            async with p.client("exchange") as direct:
                bypass = await direct.get(f"{base}/records", params={"subject": ZHANG}, headers=consumer)
            assert bypass.status_code == 403 and bypass.json()["details"]["reason"] == "no_live_grant"
            assert set(bypass.json()) == {"code", "message", "details", "trace_id"}

            # The consumer applies for three of the four items; the provider approves them, masked.
            async def request_svc_knows() -> Any:
                r = await http.post(
                    "/api/v1/requests",
                    json={
                        "resource_code": code,
                        "items": ["GMSFHM", "XM", "HJDZ"],
                        "purposes": ["data_verification"],
                        "scope": "低保审核经办人员",
                        "security_measures": "专网访问，操作留痕",
                        "business_matter": "最低生活保障对象身份核验",
                    },
                    headers=civil_admin,
                )
                return r if r.status_code == 201 else None

            request_id = (await eventually(request_svc_knows)).json()["id"]
            approved = await http.post(
                f"/api/v1/requests/{request_id}/approve",
                json={"conditions": ["仅用于身份核验"]},
                headers=psb_admin,
            )
            assert approved.status_code == 200, approved.text
            grant_id = approved.json()["grant_id"]

            async def allowed() -> Any:
                r = await http.get(f"{base}/records", params={"subject": [ZHANG, LI]}, headers=consumer)
                return r if r.status_code == 200 else None

            got = (await eventually(allowed)).json()
            data = sorted((i["data"] for i in got["items"]), key=lambda d: d["GMSFHM"])
            assert data == [
                {"GMSFHM": "110105********002X", "XM": "张*", "HJDZ": "江苏省常州市钟楼区***"},
                {"GMSFHM": LI[:6] + "********" + LI[-4:], "XM": "李*", "HJDZ": "江苏省常州市钟楼区***"},
            ]
            wrong_purpose = await http.get(
                f"{base}/records", params={"subject": ZHANG}, headers={**consumer, "X-Govshare-Purpose": "other"}
            )
            assert wrong_purpose.status_code == 403

        async with ex.state.db.engine.connect() as conn:
            accesses = [
                r[0] for r in await conn.execute(text("SELECT data FROM outbox WHERE type = 'exchange.access'"))
            ]
        assert [(a["department_code"], a["rows"], a["grant_id"]) for a in accesses] == [(CIVIL.code, 2, grant_id)]
