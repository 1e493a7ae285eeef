"""Hainan's first-access filing through the real platform (seeds/003 Art.2, 36, `first_access_filing_required`):

- a body that has not filed its written commitment uses no shared data, whoever calls: its users are refused at
  the data routes and its machine clients get no token, until the platform office records the filing;
- a resource is registered only with its secrecy review confirmed, and a classified one never.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from gateway_helpers import SHI_JIAN, bearer, department_user, setup_department
from published_resources import RESOURCE
from sqlalchemy import text

from govshare_common.testing import eventually
from govshare_stack.demo_steps import departments

from catalog_svc.demo import PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

ZHANG = "11010519491231002X"
OPEN_TO_ALL = {
    **RESOURCE,
    "share_type": "unconditional",
    "share_conditions": None,
    "not_open_reason": "personal_privacy",  # shared with departments, kept from the public
}
FILING = {"signed_by": "李局长", "signed_at": "2026-11-20T09:00:00+08:00", "commitment": "琼数承〔2026〕3号 承诺书"}


async def _client_token(http: Any, client: dict[str, Any]) -> Any:
    return await http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )


async def test_hainan_unfiled_department_uses_no_data_until_filed_and_registration_needs_the_secrecy_review(
    platform,
) -> None:
    async with platform("gateway", "catalog", "exchange", profile="hainan") as p, p.client() as http:
        gw, ex = p.apps["gateway"], p.apps["exchange"]
        admin_token = await p.token()
        admin = bearer(admin_token)
        creds = await seed_identities(http, admin_token, departments())
        psb = bearer(await p.token("gaj_admin", DEMO_PASSWORD))

        # Registration: without the secrecy review refused, naming the confirmation; classified never enters.
        unconfirmed = await http.post("/api/v1/catalog/resources", json=OPEN_TO_ALL, headers=psb)
        assert unconfirmed.status_code == 422, unconfirmed.text
        problems = {f["field"]: f for f in unconfirmed.json()["details"]["fields"]}
        assert problems["secrecy_reviewed"]["code"] == "secrecy_review_required"
        assert "保密审查" in problems["secrecy_reviewed"]["message"]
        classified = await http.post(
            "/api/v1/catalog/resources", json={**OPEN_TO_ALL, "secrecy_reviewed": True, "classified": True}, headers=psb
        )
        assert {f["field"]: f["code"] for f in classified.json()["details"]["fields"]} == {
            "classified": "classified_refused"
        }
        mine = await http.get(f"/api/v1/catalog/departments/{PSB.code}/resources", headers=psb)
        assert mine.json()["total"] == 0  # neither refusal left a draft behind

        created = await http.post(
            "/api/v1/catalog/resources", json={**OPEN_TO_ALL, "secrecy_reviewed": True}, headers=psb
        )
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=psb)).status_code == 200
        code = (await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)).json()["code"]
        base = f"/api/v1/exchange/resources/{quote(code, safe='')}"

        async def exchange_knows() -> bool:
            async with ex.state.db.engine.connect() as conn:
                return bool((await conn.execute(text("SELECT count(*) FROM resource"))).scalar())

        await eventually(lambda: asyncio.sleep(0, code in gw.state.live.resources))
        await eventually(exchange_knows)
        psb_client = next(c for c in creds["clients"].values() if c["department"] == PSB.name)
        provider = bearer((await _client_token(http, psb_client)).json()["access_token"])
        row = {"GMSFHM": ZHANG, "XM": "张三", "HJDZ": "海南省海口市龙华区滨海大道1号", "MZ": "01"}
        sent = await http.post(
            f"{base}/batches",
            params={"batch_id": "hn-1"},
            content=(json.dumps(row, ensure_ascii=False) + "\n").encode(),
            headers=provider,
        )
        assert sent.status_code == 200, sent.text

        # A department registered but not filed: its user signs in, and is refused the data with the reason.
        await setup_department(http, admin, SHI_JIAN, "市场监督管理局", filed=False)
        reader = {
            **bearer(await department_user(p, http, admin, SHI_JIAN, "scj_reviewer", ["dept_reviewer"])),
            "X-Govshare-Purpose": "work_reference",
        }
        machine = (
            await http.post(
                "/api/v1/identity/clients",
                json={"name": "市场监管业务系统", "department_code": SHI_JIAN},
                headers=admin,
            )
        ).json()

        async def exchange_has_seen_the_department() -> bool:
            async with ex.state.db.engine.connect() as conn:
                seen = await conn.execute(
                    text("SELECT count(*) FROM department_filing WHERE department_code = :d"), {"d": SHI_JIAN}
                )
                return bool(seen.scalar())

        await eventually(exchange_has_seen_the_department)
        refused = await http.get(f"{base}/records", params={"subject": ZHANG}, headers=reader)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "department_not_filed"
        assert "备案" in refused.json()["message"]
        exported = await http.post(f"{base}/exports", json={"format": "csv"}, headers=reader)
        assert exported.status_code == 403 and exported.json()["code"] == "department_not_filed"
        no_token = await _client_token(http, machine)
        assert no_token.status_code == 401 and no_token.json()["code"] == "department_not_filed"

        # The platform office records the filing: the same user and client now use the data.
        filed = await http.post(f"/api/v1/identity/departments/{SHI_JIAN}/filing", json=FILING, headers=admin)
        assert filed.status_code == 200, filed.text

        async def served() -> Any:
            r = await http.get(f"{base}/records", params={"subject": ZHANG}, headers=reader)
            return r if r.status_code == 200 else None

        got = (await eventually(served)).json()
        assert [i["data"]["MZ"] for i in got["items"]] == ["01"]
        assert got["items"][0]["data"]["XM"] == "张*"
        assert (await _client_token(http, machine)).status_code == 200
