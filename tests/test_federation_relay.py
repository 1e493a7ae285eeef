"""Federation through the platform in between (issue 16): three real platforms in one module, 常州市 (the city,
320400) and its two districts 钟楼区 (320404) and 天宁区 (320402), each with its own database, topics, master
secret, services and door. The districts are not peers of each other: everything between them goes through the
city (001 Art.8).

- Catalog: 钟楼区's resource shared across levels reaches 天宁区 through the city, under its true origin and the
  code 天宁区's departments apply and query by; never back to 钟楼区; withdrawn there, gone at 天宁区.
- Requests: 天宁区's department applies; the request goes 天宁区 → 常州市 → 钟楼区, is decided there under 钟楼区's
  profile and due date, and every change comes back through the city; the city keeps a relay record, no grant.
- Online query: 天宁区 → 常州市 (signed) → 钟楼区, masked by 钟楼区's grant, stopped by its revocation; each
  platform writes its own access (the city's a relay naming both ends); forged, unknown and replayed relays are
  refused and recorded.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway_helpers import access_events, bearer, department_user, setup_department, uscc
from published_resources import RESOURCE
from sqlalchemy import text
from test_federation import district_publisher, publish, withdraw
from test_federation_requests import (
    APPLICATION,
    auditor,
    nth_working_day_after,
    resident_id,
    until_ok,
    until_ok_or_refused,
)

from govshare_common.message_signatures import sign_request
from govshare_common.testing import eventually
from govshare_common.workdays import CHINA_TZ

from catalog_svc.demo import PSB

CITY, ZHONGLOU, TIANNING = "320400", "320404", "320402"
SERVICES = ("gateway", "catalog", "request", "exchange", "audit")
COMMON: dict[str, Any] = {"federation_pull_interval_seconds": 0.2}
SITES: dict[str, dict[str, Any]] = {
    CITY: {"platform_name": "常州市", "platform_level": "prefecture_city", "profile": "xiangyang"},
    ZHONGLOU: {"platform_name": "常州市钟楼区", "platform_level": "district", "profile": "zhonglou"},
    TIANNING: {"platform_name": "常州市天宁区", "platform_level": "district", "profile": "xiangyang"},
}
TIANNING_CIVIL = uscc("11320402014100001")  # 天宁区民政局, the applying department
PERSON = resident_id("32040419790605432")


@dataclass
class Site:
    p: Any
    http: httpx.AsyncClient
    admin: dict[str, str]


@dataclass
class Network:
    city: Site
    zhonglou: Site
    tianning: Site
    psb: dict[str, str]  # 钟楼区公安局, the provider
    civil: dict[str, str]  # 天宁区民政局, the consumer


async def _identity(p: Any) -> dict[str, Any]:
    async with p.client() as http:
        r = await http.get("/.well-known/govshare-platform")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def register(here: Site, there: Any, relation: str) -> None:
    ident = await _identity(there)
    r = await here.http.post(
        "/api/v1/catalog/federation/peers",
        json={
            "division_code": ident["division_code"],
            "name": ident["name"],
            "level": ident["level"],
            "relation": relation,
            "base_url": there.urls["gateway"],
            "public_key": ident["public_key"],
        },
        headers=here.admin,
    )
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
async def network(module_sites: Any) -> AsyncIterator[Network]:
    """The three platforms, started once for the module and peered as their offices would: each district
    registers the city as its parent, the city registers both districts as children."""
    city_start, zl_start, tn_start = [await module_sites(name) for name in ("city", "zhonglou", "tianning")]
    async with (
        city_start(*SERVICES, platform_division_code=CITY, **SITES[CITY], **COMMON) as city,
        zl_start(*SERVICES, platform_division_code=ZHONGLOU, **SITES[ZHONGLOU], **COMMON) as zhonglou,
        tn_start(*SERVICES, platform_division_code=TIANNING, **SITES[TIANNING], **COMMON) as tianning,
        city.client() as chttp,
        zhonglou.client() as zhttp,
        tianning.client() as thttp,
    ):
        sites = [Site(p, h, bearer(await p.token())) for p, h in ((city, chttp), (zhonglou, zhttp), (tianning, thttp))]
        c, z, t = sites
        await register(z, city, "parent")
        await register(t, city, "parent")
        await register(c, zhonglou, "child")
        await register(c, tianning, "child")
        _admin, psb = await district_publisher(zhonglou, zhttp)
        await setup_department(thttp, t.admin, TIANNING_CIVIL, "天宁区民政局")
        civil = bearer(await department_user(tianning, thttp, t.admin, TIANNING_CIVIL, "tn_civil", ["dept_admin"]))
        yield Network(c, z, t, psb, civil)


async def listed(site: Site, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = await site.http.get(
        "/api/v1/catalog/resources", params={"provider_code": PSB.code, "limit": 200, **params}, headers=headers
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def shown_at(site: Site, headers: dict[str, str], name: str) -> dict[str, Any] | None:
    return next((i for i in await listed(site, headers) if i["name"] == name), None)


async def zhonglou_resource(net: Network, name: str, **changes: Any) -> tuple[str, str]:
    """Published at 钟楼区 by its 公安局; (id, its code at 钟楼区)."""
    rid = await publish(net.zhonglou.http, {**RESOURCE, "name": name, **changes}, net.psb, net.zhonglou.admin)
    r = await net.zhonglou.http.get(f"/api/v1/catalog/resources/{rid}", headers=net.psb)
    assert r.status_code == 200, r.text
    return rid, str(r.json()["code"])


# --- 1. the catalog passed on to the sibling ----------------------------------------------------------------


async def a_districts_cross_level_resource_reaches_its_sibling_through_the_city_and_leaves_with_its_withdrawal(
    network: Network,
) -> None:
    net = network
    shared, code = await zhonglou_resource(net, "钟楼区常住人口基本信息", cross_level=True)
    await zhonglou_resource(net, "钟楼区暂住人口登记信息")  # this level only

    item = await eventually(lambda: shown_at(net.tianning, net.civil, "钟楼区常住人口基本信息"), timeout=30)
    # under its true origin (not the city it came through), the provider its own, and the code to apply by
    assert item["id"] == shared
    assert item["origin"] == {"division_code": ZHONGLOU, "name": "常州市钟楼区", "level": "district"}
    assert (item["provider_code"], item["provider_name"]) == (PSB.code, PSB.name)
    assert (item["code"], item["origin_code"]) == (f"{ZHONGLOU}:{code}", code)

    async def found(q: str) -> list[str]:
        r = await net.tianning.http.get("/api/v1/catalog/search", params={"q": q}, headers=net.civil)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert await eventually(lambda: found("常住人口基本信息"), timeout=10) == [shared]
    # the one of this level only is at the city (the whole catalog goes up), never at the sibling
    assert await eventually(lambda: shown_at(net.city, net.city.admin, "钟楼区暂住人口登记信息"), timeout=30)
    assert await shown_at(net.tianning, net.civil, "钟楼区暂住人口登记信息") is None
    # read-only at the sibling: maintained at its origin
    r = await net.tianning.http.post(
        f"/api/v1/catalog/resources/{shared}/withdraw", json={"reason": "试图撤销"}, headers=net.tianning.admin
    )
    assert r.status_code == 403 and r.json()["code"] == "mirrored_resource", r.text
    # never back to the district it came from: there it is its own, once, and nothing is mirrored from the city
    mine = [i for i in await listed(net.zhonglou, net.psb) if i["id"] == shared]
    assert [(i["code"], i["origin"]) for i in mine] == [(code, None)]
    r = await net.zhonglou.http.get(f"/api/v1/catalog/federation/peers/{CITY}", headers=net.zhonglou.admin)
    assert r.status_code == 200 and r.json()["feed"]["mirrored_resources"] == 0, r.text

    await withdraw(net.zhonglou.http, shared, net.psb)

    async def gone() -> bool:
        return await shown_at(net.tianning, net.civil, "钟楼区常住人口基本信息") is None and not await found(
            "常住人口基本信息"
        )

    await eventually(gone, timeout=30)
    assert await shown_at(net.city, net.city.admin, "钟楼区常住人口基本信息") is None


# --- 2. a request forwarded hop by hop ----------------------------------------------------------------------


async def request_at(site: Site, request_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await site.http.get(f"/api/v1/requests/{request_id}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def rows(site: Site, service: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with site.p.apps[service].state.db.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(text(sql), params)]


async def apply_at_tianning(net: Network, code: str, **body: Any) -> dict[str, Any]:
    """天宁区民政局 applies at home by the code its catalog lists, once request-svc knows where it lives."""

    async def applied() -> dict[str, Any] | None:
        r = await net.tianning.http.post(
            "/api/v1/requests", json={**APPLICATION, "resource_code": code, **body}, headers=net.civil
        )
        if r.status_code == 422 and r.json()["details"]["fields"][0]["code"] == "unknown_resource":
            return None  # the mirror has not reached request-svc yet
        assert r.status_code == 201, r.text
        return dict(r.json())

    return await eventually(applied, timeout=30)


async def a_request_goes_through_the_city_is_decided_at_the_owner_and_every_change_comes_back(
    network: Network,
) -> None:
    net = network
    _rid, origin_code = await zhonglou_resource(net, "钟楼区户籍人口信息（核验）", cross_level=True)
    item = await eventually(lambda: shown_at(net.tianning, net.civil, "钟楼区户籍人口信息（核验）"), timeout=30)

    made = await apply_at_tianning(net, item["code"])  # the code the listing shows is the one to apply by
    assert made["state"] in ("forwarding", "submitted") and made["origin_platform"] == ZHONGLOU
    today = datetime.now(CHINA_TZ).date()

    async def submitted() -> dict[str, Any] | None:
        shown = await request_at(net.tianning, made["id"], net.civil)
        return shown if shown["state"] == "submitted" and shown["profile"] else None

    home = await eventually(submitted, timeout=30)
    # due when 钟楼区's profile says (5 working days, real calendar), not 天宁区's or the city's 10
    assert home["due_date"] == nth_working_day_after(today, 5).isoformat()
    assert (home["profile"], home["provider_code"]) == ("zhonglou", PSB.code)
    assert home["resource_name"] == "钟楼区户籍人口信息（核验）"

    # at 钟楼区: an ordinary request to its 公安局 from 天宁区民政局, come through the city, under its own rules
    r = await net.zhonglou.http.get("/api/v1/requests", params={"role": "provider"}, headers=net.psb)
    assert r.status_code == 200, r.text
    (there,) = [i for i in r.json()["items"] if i["consumer_code"] == TIANNING_CIVIL]
    assert home["origin_request_id"] == there["id"]  # 天宁区 names the owner's request, not the city's relay
    assert (there["consumer_platform"], there["due_date"], there["profile"]) == (CITY, home["due_date"], "zhonglou")
    (received,) = await rows(
        net.zhonglou,
        "request",
        "SELECT data FROM outbox WHERE type = 'request.received' AND subject = :k",
        k=there["id"],
    )
    assert (received["data"]["applicant_platform"], received["data"]["from_peer"]) == (TIANNING, CITY)

    # the city relays: its record names both ends and goes on to 钟楼区, never back to 天宁区
    (relay,) = await rows(
        net.city,
        "request",
        "SELECT id::text, state, consumer_code, consumer_platform, next_hop, origin_platform, origin_request_id "
        "FROM share_request WHERE peer_request_id = :id",
        id=made["id"],
    )
    assert (relay["consumer_code"], relay["consumer_platform"]) == (TIANNING_CIVIL, TIANNING)
    assert (relay["next_hop"], relay["origin_platform"], relay["origin_request_id"]) == (
        ZHONGLOU,
        ZHONGLOU,
        there["id"],
    )
    (forwarded,) = await rows(
        net.city, "request", "SELECT data FROM outbox WHERE type = 'request.forwarded' AND subject = :k", k=relay["id"]
    )
    assert (forwarded["data"]["applicant_platform"], forwarded["data"]["next_hop"]) == (TIANNING, ZHONGLOU)
    # … and the city's own workflow cannot act on what it only relays
    r = await net.city.http.post(f"/api/v1/requests/{relay['id']}/approve", json={}, headers=net.city.admin)
    assert r.status_code == 409 and r.json()["code"] == "cross_level_request", r.text

    # decided at 钟楼区, narrowed to one item: the decision and the grant come back through the city
    r = await net.zhonglou.http.post(
        f"/api/v1/requests/{there['id']}/approve", json={"items": ["XM"], "comment": "同意核验姓名"}, headers=net.psb
    )
    assert r.status_code == 200, r.text

    async def approved() -> dict[str, Any] | None:
        shown = await request_at(net.tianning, made["id"], net.civil)
        return shown if shown["state"] == "approved" else None

    home = await eventually(approved, timeout=30)
    assert home["decision_reason"] == "同意核验姓名"
    grant = home["origin_status"]["grant"]
    assert grant["status"] == "active" and grant["items"] == ["XM"]
    assert [h["action"] for h in home["history"]] == ["forwarded", "forwarded", "submitted", "approved"]
    # the grant is 钟楼区's: the city holds none, for anyone
    assert await rows(net.city, "request", "SELECT id FROM share_grant") == []
    assert await rows(net.tianning, "request", "SELECT id FROM share_grant") == []

    # revoked at 钟楼区: 天宁区's record says so, with the reason, through the city
    r = await net.zhonglou.http.post(
        f"/api/v1/grants/{grant['id']}/revoke", json={"reason": "核验事项已办结"}, headers=net.psb
    )
    assert r.status_code == 200, r.text

    async def revoked() -> dict[str, Any] | None:
        g = (await request_at(net.tianning, made["id"], net.civil))["origin_status"]["grant"]
        return g if g["status"] == "revoked" else None

    assert (await eventually(revoked, timeout=30))["end_reason"] == "核验事项已办结"

    # an application 钟楼区's rules refuse comes back refused through the city, and leaves nothing there
    bad = await apply_at_tianning(net, item["code"], items=["NO_SUCH_ITEM"])

    async def refused() -> dict[str, Any] | None:
        shown = await request_at(net.tianning, bad["id"], net.civil)
        return shown if shown["state"] == "forward_refused" else None

    refusal = (await eventually(refused, timeout=30))["origin_status"]["refusal"]
    assert refusal["code"] == "validation_failed" and refusal["details"]["fields"][0]["code"] == "unknown_items"
    made_there = await rows(
        net.zhonglou, "request", "SELECT id FROM share_request WHERE resource_code = :c", c=origin_code
    )
    assert len(made_there) == 1


# --- 3. an online query relayed by the city -----------------------------------------------------------------

PEER_RECORDS = "/api/v1/exchange/federation/peer-records"


async def traced(site: Site, headers: dict[str, str]) -> list[dict[str, Any]] | None:
    r = await site.http.post("/api/v1/audit/trace/subject", json={"identifier": PERSON}, headers=headers)
    assert r.status_code == 200, r.text
    return [h for h in r.json()["items"] if h["type"] == "exchange.access"] or None


async def a_query_relayed_by_the_city_is_masked_by_the_owners_grant_audited_at_every_platform_and_revocable(
    network: Network,
) -> None:
    net = network
    _rid, origin_code = await zhonglou_resource(net, "钟楼区户籍人口信息（查询）", cross_level=True)
    line = json.dumps({"GMSFHM": PERSON, "XM": "李四光", "HJDZ": "常州市钟楼区西新桥2号", "MZ": "01"})
    await until_ok(
        lambda: net.zhonglou.http.post(
            f"/api/v1/exchange/resources/{quote(origin_code, safe='')}/batches",
            params={"batch_id": "relay-1", "format": "jsonl"},
            content=line.encode() + b"\n",
            headers=net.psb,
        )
    )
    item = await eventually(lambda: shown_at(net.tianning, net.civil, "钟楼区户籍人口信息（查询）"), timeout=30)
    code = item["code"]  # the code the listing shows is the one to query by
    records = f"/api/v1/exchange/federation/records/{quote(code, safe='')}"
    ask = {**net.civil, "X-Govshare-Purpose": "data_verification"}

    # before any grant the owner refuses; its refusal comes back through the city as it gave it
    r = await until_ok_or_refused(lambda: net.tianning.http.get(records, params={"subject": PERSON}, headers=ask))
    assert r.status_code == 403 and r.json()["code"] == "no_grant", r.text
    assert r.json()["details"]["origin_platform"] == ZHONGLOU and r.json()["details"]["origin_trace_id"]

    made = await apply_at_tianning(net, code)

    async def received() -> str | None:
        shown = await request_at(net.tianning, made["id"], net.civil)
        return shown["origin_request_id"] if shown["state"] == "submitted" and shown["profile"] else None

    there = await eventually(received, timeout=30)
    r = await net.zhonglou.http.post(
        f"/api/v1/requests/{there}/approve", json={"items": ["XM", "GMSFHM"]}, headers=net.psb
    )
    assert r.status_code == 200, r.text

    # 天宁区's department asks its own door; 钟楼区 answers by its grant, through the city: two items, masked
    r = await until_ok(lambda: net.tianning.http.get(records, params={"subject": PERSON}, headers=ask))
    answer = r.json()
    assert (answer["origin_platform"], answer["resource_code"], answer["total"]) == (ZHONGLOU, code, 1)
    data = answer["items"][0]["data"]
    assert set(data) == {"XM", "GMSFHM"}  # the address and ethnicity were not granted
    assert data["XM"] != "李四光" and data["XM"].startswith("李")
    assert data["GMSFHM"] != PERSON and "*" in data["GMSFHM"]

    # each platform on the way writes its own access: a trace by the ID number finds it at both ends …
    tn_auditor = await auditor(net.tianning.p, net.tianning.http, TIANNING_CIVIL, "tn_auditor")
    (hit,) = await eventually(lambda: traced(net.tianning, tn_auditor), timeout=30)
    assert (hit["data"]["basis"], hit["data"]["origin_platform"], hit["data"]["via_platform"]) == (
        "cross_level",
        ZHONGLOU,
        CITY,
    )
    assert (hit["data"]["department_code"], hit["data"]["resource_code"], hit["data"]["rows"]) == (
        TIANNING_CIVIL,
        code,
        1,
    )
    zl_auditor = await auditor(net.zhonglou.p, net.zhonglou.http, PSB.code, "zl_auditor")
    (hit,) = await eventually(lambda: traced(net.zhonglou, zl_auditor), timeout=30)
    assert hit["data"]["principal"].startswith(f"peer:{TIANNING}:")  # the asking department's platform
    assert (hit["data"]["department_code"], hit["data"]["resource_code"]) == (TIANNING_CIVIL, origin_code)
    # … and the city's is a relay naming both ends
    (relay,) = [
        e["data"]
        for e in await rows(net.city, "exchange", "SELECT data FROM outbox WHERE type = 'exchange.access'")
        if e["data"]["rows"] == 1
    ]
    assert (relay["basis"], relay["consumer_platform"], relay["origin_platform"]) == ("relay", TIANNING, ZHONGLOU)
    assert (relay["department_code"], relay["resource_code"]) == (TIANNING_CIVIL, code)
    assert relay["grant_id"] == answer["grant_id"]

    # revoked at 钟楼区: 天宁区's next queries are refused, through the city
    r = await net.zhonglou.http.post(
        f"/api/v1/grants/{answer['grant_id']}/revoke", json={"reason": "核验已办结"}, headers=net.psb
    )
    assert r.status_code == 200, r.text

    async def stopped() -> httpx.Response | None:
        r = await net.tianning.http.get(records, params={"subject": PERSON}, headers=ask)
        return r if r.status_code == 403 else None

    r = await eventually(stopped, timeout=10)
    assert r.json()["code"] == "no_grant" and r.json()["details"]["origin_platform"] == ZHONGLOU

    # relays the city did not sign for: forged, from an unknown platform, replayed — refused and recorded
    query = urlencode(
        [("resource", origin_code), ("consumer", TIANNING_CIVIL), ("origin", ZHONGLOU), ("subject", PERSON)]
    )
    path = f"{PEER_RECORDS}?{query}"
    url = f"{net.city.p.urls['gateway']}{path}"
    tianning_key = net.tianning.p.apps["exchange"].state.federation_identity.key

    def signed(key: Ed25519PrivateKey, keyid: str, nonce: str | None = None) -> dict[str, str]:
        return sign_request(
            method="GET",
            target_uri=url,
            body=b"",
            key=key,
            keyid=keyid,
            created=int(time.time()),
            idempotency_key=uuid.uuid4().hex,
            **({"nonce": nonce} if nonce else {}),
        )

    owner_accesses = "SELECT data FROM outbox WHERE type = 'exchange.access'"
    accessed_before = len(await rows(net.zhonglou, "exchange", owner_accesses))
    once = signed(tianning_key, TIANNING, nonce=uuid.uuid4().hex)
    r = await net.city.http.get(path, headers=once)
    assert r.status_code == 403 and r.json()["code"] == "no_grant", r.text  # a true relay: the owner's answer
    refusals = {
        "forged": (signed(Ed25519PrivateKey.generate(), TIANNING), "signature_invalid"),
        "unknown": (signed(Ed25519PrivateKey.generate(), "110000"), "peer_unknown"),
        "replayed": (once, "nonce_replayed"),
    }
    for what, (headers, refused_code) in refusals.items():
        r = await net.city.http.get(path, headers=headers)
        assert r.status_code == 401, (what, r.text)
        assert r.json()["code"] == refused_code and r.json()["trace_id"], (what, r.text)

    async def recorded() -> dict[str, dict[str, Any]] | None:
        found = [a for a in await access_events(net.city.p.apps["gateway"]) if a["route"].startswith(PEER_RECORDS)]
        denied = {a["reason"]: a for a in found if a["outcome"] == "denied"}
        return denied if {c for _, c in refusals.values()} <= set(denied) else None

    denied = await eventually(recorded, timeout=20)
    assert denied["signature_invalid"]["principal"] == f"peer:{TIANNING}"
    assert all(denied[c]["status"] == 401 for _, c in refusals.values())
    # nothing the refused calls asked reached the owner: no access of theirs at 钟楼区
    assert len(await rows(net.zhonglou, "exchange", owner_accesses)) == accessed_before


async def test_two_districts_reach_each_other_through_their_city(network: Network) -> None:
    """One test, so the three platforms start once however pytest-xdist spreads tests over workers (a
    module-scoped fixture would start once per worker that runs one of the module's tests)."""
    await a_districts_cross_level_resource_reaches_its_sibling_through_the_city_and_leaves_with_its_withdrawal(network)
    await a_request_goes_through_the_city_is_decided_at_the_owner_and_every_change_comes_back(network)
    await a_query_relayed_by_the_city_is_masked_by_the_owners_grant_audited_at_every_platform_and_revocable(network)
