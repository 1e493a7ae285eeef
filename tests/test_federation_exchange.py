"""Cross-level subscription and bulk export (issue 16 item 5) between two real platforms, started once for the
module: 常州市 (the city, the consumer) and 钟楼区 (the district, which owns 户籍人口登记信息 and granted the
city's 民政局 two items, the name masked and the ID number in clear).

consumer → its own door → its own exchange-svc → the district's door (a signed call) → the district's
exchange-svc, which checks its grant at every call and masks by it; each side writes its own access. Each test
stands on its own (xdist may split the module between its workers, each then starting its own pair); the
revocation test is last in the file: it ends the grant the others use.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway_helpers import access_events, bearer
from sqlalchemy import text
from test_federation import CITY, DISTRICT, DISTRICT_SETTINGS, district_publisher, peer_up, publish, resource
from test_federation_requests import (
    CITY_CIVIL,
    CITY_SETTINGS,
    QUERYING,
    apply_when_mirrored,
    auditor,
    city_applicant,
    request_at,
    resident_id,
    until_ok,
)

from govshare_common.message_signatures import sign_request
from govshare_common.testing import eventually

from catalog_svc.demo import PSB

PEOPLE = {
    resident_id("32040419850312123"): "张三丰",
    resident_id("32040419900101456"): "李四海",
    resident_id("32040419771224789"): "王五岳",
}
NEWCOMER = resident_id("32040420010615321")  # arrives at the district after the city subscribed
AWAY = resident_id("32040419660909147")  # arrives while the district's door is down
PURPOSE = "data_verification"
SUBSCRIPTIONS = "/api/v1/exchange/federation/subscriptions"
EXPORTS = "/api/v1/exchange/federation/exports"


@dataclass
class Pair:
    city: Any
    district: Any
    chttp: httpx.AsyncClient
    dhttp: httpx.AsyncClient
    civil: dict[str, str]  # the city department, asking at its own door with its purpose
    psb: dict[str, str]  # the district's provider
    district_admin: dict[str, str]
    origin_code: str
    mirrored: str


def row(subject: str, name: str) -> bytes:
    return json.dumps({"GMSFHM": subject, "XM": name, "HJDZ": "常州市钟楼区南大街1号", "MZ": "01"}).encode() + b"\n"


async def ingest(pair: Pair, lines: bytes) -> None:
    await until_ok(
        lambda: pair.dhttp.post(
            f"/api/v1/exchange/resources/{quote(pair.origin_code, safe='')}/batches",
            params={"batch_id": uuid.uuid4().hex[:12], "format": "jsonl"},
            content=lines,
            headers=pair.psb,
        )
    )


@pytest.fixture(scope="module")
async def pair(module_sites: Any) -> AsyncIterator[Pair]:
    city_site, district_site = await module_sites("city"), await module_sites("district")
    async with (
        city_site(*QUERYING, **CITY_SETTINGS) as city,
        district_site(*QUERYING, profile="zhonglou", **DISTRICT_SETTINGS) as district,
        city.client() as chttp,
        district.client() as dhttp,
    ):
        await peer_up(city, district)
        district_admin, psb = await district_publisher(district, dhttp)
        await publish(dhttp, resource(1), psb, district_admin)
        r = await dhttp.get("/api/v1/catalog/resources", params={"provider_code": PSB.code}, headers=psb)
        origin_code = next(i["code"] for i in r.json()["items"] if i["name"] == resource(1)["name"])
        civil = await city_applicant(city, chttp)
        mirrored = f"{DISTRICT}:{origin_code}"
        made = await apply_when_mirrored(city, chttp, mirrored, civil)

        async def received() -> str | None:
            shown = await request_at(city, chttp, made["id"], civil)
            return shown["origin_request_id"] if shown["state"] == "submitted" else None

        there = await eventually(received, timeout=30)
        r = await dhttp.post(
            f"/api/v1/requests/{there}/approve",
            json={"items": ["XM", "GMSFHM"], "unmasked_items": ["GMSFHM"]},
            headers=psb,
        )
        assert r.status_code == 200, r.text
        pair = Pair(
            city,
            district,
            chttp,
            dhttp,
            {**civil, "X-Govshare-Purpose": PURPOSE},
            psb,
            district_admin,
            origin_code,
            mirrored,
        )
        await ingest(pair, b"".join(row(s, n) for s, n in PEOPLE.items()))
        yield pair


async def subscribed(pair: Pair, **body: Any) -> dict[str, Any]:
    """Subscribed at the city's door once the district's exchange-svc has learnt the grant."""

    async def made() -> dict[str, Any] | None:
        r = await pair.chttp.post(SUBSCRIPTIONS, json={"resource_code": pair.mirrored, **body}, headers=pair.civil)
        if r.status_code in (403, 404):
            return None  # the grant, or the mirror, has not reached exchange-svc yet
        assert r.status_code == 201, r.text
        return dict(r.json())

    return await eventually(made, timeout=30)


async def changes(pair: Pair, sub_id: str, **params: Any) -> httpx.Response:
    return await pair.chttp.get(f"{SUBSCRIPTIONS}/{sub_id}/changes", params=params, headers=pair.civil)


async def trace_hit(p: Any, http: httpx.AsyncClient, headers: dict[str, str], identifier: str, kind: str) -> Any:
    async def traced() -> Any:
        r = await http.post("/api/v1/audit/trace/subject", json={"identifier": identifier}, headers=headers)
        assert r.status_code == 200, r.text
        hits = [h for h in r.json()["items"] if h["type"] == "exchange.access" and h["data"]["kind"] == kind]
        return hits or None

    return await eventually(traced, timeout=30)


async def test_the_city_subscriber_reads_the_districts_changes_in_order_masked_at_least_once_and_cancels(
    pair: Pair,
) -> None:
    sub = await subscribed(pair)  # from now on: what was there before is not a change
    assert sub["origin_platform"] == DISTRICT and sub["status"] == "active"
    first = next(iter(PEOPLE))
    await ingest(pair, row(first, "张三") + row(NEWCOMER, "赵六顺"))

    r = await changes(pair, sub["id"])
    assert r.status_code == 200, r.text
    read = r.json()
    assert read["origin_platform"] == DISTRICT and read["resource_code"] == pair.mirrored
    items = read["items"]
    assert [i["op"] for i in items] == ["update", "insert"]
    assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)
    # masked by the district's grant: the name masked, the ID number in clear, the address and ethnicity absent
    assert [i["data"]["GMSFHM"] for i in items] == [first, NEWCOMER]
    assert [i["data"]["XM"] for i in items] == ["张*", "赵**"]
    assert all(set(i["data"]) == {"XM", "GMSFHM"} for i in items)

    # at least once: not acknowledged, read again the same; acknowledged, not again
    again = (await changes(pair, sub["id"])).json()["items"]
    assert [i["seq"] for i in again] == [i["seq"] for i in items]
    r = await pair.chttp.post(
        f"{SUBSCRIPTIONS}/{sub['id']}/ack", json={"cursor": read["next_cursor"]}, headers=pair.civil
    )
    assert r.status_code == 200, r.text
    assert (await changes(pair, sub["id"])).json()["items"] == []
    r = await pair.chttp.post(f"{SUBSCRIPTIONS}/{sub['id']}/ack", json={"cursor": 10**9}, headers=pair.civil)
    assert r.status_code == 422 and r.json()["code"] == "bad_cursor" and r.json()["trace_id"], r.text

    # each side's trail finds the newcomer's feed read by the ID number
    for p, http, dept, who in (
        (pair.city, pair.chttp, CITY_CIVIL, "feed_city_aud"),
        (pair.district, pair.dhttp, PSB.code, "feed_district_aud"),
    ):
        hits = [h["data"] for h in await trace_hit(p, http, await auditor(p, http, dept, who), NEWCOMER, "feed")]
        assert len(hits) == 2  # read twice (not acknowledged the first time)
        assert all(h["department_code"] == CITY_CIVIL for h in hits)
        if p is pair.city:
            assert {(h["basis"], h["origin_platform"], h["resource_code"]) for h in hits} == {
                ("cross_level", DISTRICT, pair.mirrored)
            }
        else:
            assert all(h["principal"].startswith(f"peer:{CITY}:") for h in hits)
            assert {h["resource_code"] for h in hits} == {pair.origin_code}

    # cancelled at home, cancelled at the owner too
    r = await pair.chttp.delete(f"{SUBSCRIPTIONS}/{sub['id']}", headers=pair.civil)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    r = await changes(pair, sub["id"])
    assert r.status_code == 404 and r.json()["code"] == "unknown_subscription", r.text
    async with pair.district.apps["exchange"].state.db.engine.connect() as conn:
        states = (
            (await conn.execute(text("SELECT status FROM subscription WHERE department_code = :d"), {"d": CITY_CIVIL}))
            .scalars()
            .all()
        )
    assert states == ["cancelled"]


async def test_a_subscriber_loses_nothing_while_the_owners_door_is_down(pair: Pair) -> None:
    sub = await subscribed(pair)
    pair.district.door.stop()
    try:
        r = await changes(pair, sub["id"])
        assert r.status_code == 503 and r.json()["code"] == "peer_unavailable", r.text
        assert r.json()["details"]["origin_platform"] == DISTRICT
        # the district goes on meanwhile (its provider at its exchange-svc itself, the door being down)
        async with httpx.AsyncClient(base_url=pair.district.direct["exchange"], timeout=30) as direct:
            r = await direct.post(
                f"/api/v1/exchange/resources/{quote(pair.origin_code, safe='')}/batches",
                params={"batch_id": "while-away", "format": "jsonl"},
                content=row(AWAY, "钱七"),
                headers=pair.psb,
            )
            assert r.status_code in (200, 201), r.text
    finally:
        pair.district.door.start()
    r = await until_ok(lambda: changes(pair, sub["id"]))
    assert [(i["op"], i["data"]["GMSFHM"], i["data"]["XM"]) for i in r.json()["items"]] == [("insert", AWAY, "钱*")]


async def test_the_city_exports_the_districts_resource_masked_watermarked_and_resumable(pair: Pair) -> None:
    # more than one page of the owner's (1,000 rows), so the download passes several signed pages on
    born = date(1960, 1, 1)
    await ingest(
        pair,
        b"".join(
            row(resident_id(f"320404{born + timedelta(days=i):%Y%m%d}{i % 1000:03d}"), f"孙{i}") for i in range(1100)
        ),
    )

    async def started() -> dict[str, Any] | None:
        r = await pair.chttp.post(EXPORTS, json={"resource_code": pair.mirrored, "format": "jsonl"}, headers=pair.civil)
        if r.status_code in (403, 404):
            return None  # the grant has not reached the district's exchange-svc yet
        assert r.status_code == 201, r.text
        return dict(r.json())

    export = await eventually(started, timeout=30)
    async with pair.district.apps["exchange"].state.db.engine.connect() as conn:
        held = (await conn.execute(text("SELECT count(*) FROM record"))).scalar_one()
    assert export["origin_platform"] == DISTRICT and export["total_rows"] == held > 1000
    download = f"{EXPORTS}/{export['id']}/download"
    r = await pair.chttp.get(download, headers=pair.civil)
    assert r.status_code == 200, r.text
    mark = r.headers["X-Govshare-Export-Fingerprint"]
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == export["total_rows"]
    assert all(set(x) == {"XM", "GMSFHM", "_wm"} and x["_wm"] == mark for x in rows)
    assert all(x["XM"].endswith("*") and "*" not in x["GMSFHM"] for x in rows)
    assert {x["GMSFHM"] for x in rows} >= set(PEOPLE)

    r = await pair.chttp.get(download, params={"offset": 2}, headers=pair.civil)
    assert r.status_code == 200, r.text
    assert [json.loads(line) for line in r.text.splitlines()] == rows[2:]
    r = await pair.chttp.get(download, params={"offset": export["total_rows"] + 1}, headers=pair.civil)
    assert r.status_code == 422 and r.json()["code"] == "bad_cursor", r.text
    r = await pair.chttp.get(f"{EXPORTS}/{export['id']}", headers=pair.civil)
    assert (r.json()["status"], r.json()["rows_sent"]) == ("completed", export["total_rows"]), r.text

    # the watermark names the export at the owner, made for the city's department through the city
    r = await pair.dhttp.post("/api/v1/exchange/exports/trace", content=mark.encode(), headers=pair.district_admin)
    assert r.status_code == 200, r.text
    (traced,) = r.json()["items"]
    assert traced["department_code"] == CITY_CIVIL and traced["principal"].startswith(f"peer:{CITY}:")
    # … and at the city, the department's export made for it there
    city_admin = bearer(await pair.city.token())
    r = await pair.chttp.post("/api/v1/exchange/exports/trace", content=rows[1]["_wm"].encode(), headers=city_admin)
    assert r.status_code == 200, r.text
    (traced,) = r.json()["items"]
    assert (traced["id"], traced["origin_platform"], traced["department_code"]) == (export["id"], DISTRICT, CITY_CIVIL)

    # each side's trail finds the export by an ID number in it
    person = next(iter(PEOPLE))
    for p, http, dept, who in (
        (pair.city, pair.chttp, CITY_CIVIL, "export_city_aud"),
        (pair.district, pair.dhttp, PSB.code, "export_district_aud"),
    ):
        hits = await trace_hit(p, http, await auditor(p, http, dept, who), person, "export")
        assert all(h["data"]["department_code"] == CITY_CIVIL for h in hits)
        if p is pair.city:
            assert {(h["data"]["basis"], h["data"]["origin_platform"]) for h in hits} == {("cross_level", DISTRICT)}


async def test_forged_unsigned_and_unknown_peer_calls_are_refused_and_recorded(pair: Pair) -> None:
    paths = {
        "POST": "/api/v1/exchange/federation/peer-subscriptions",
        "GET": f"/api/v1/exchange/federation/peer-exports/{uuid.uuid4()}/rows?consumer={CITY_CIVIL}&offset=0",
    }
    body = json.dumps({"resource": pair.origin_code, "consumer": CITY_CIVIL, "purpose": PURPOSE}).encode()
    async with pair.district.apps["exchange"].state.db.engine.connect() as conn:
        before = (await conn.execute(text("SELECT count(*) FROM subscription"))).scalar_one()
    expected: list[tuple[str, str]] = []
    for method, path in paths.items():
        url = f"{pair.district.urls['gateway']}{path}"
        content = body if method == "POST" else b""

        def signed(key: Ed25519PrivateKey, keyid: str, method: str = method, url: str = url, content: bytes = content):
            return sign_request(
                method=method,
                target_uri=url,
                body=content,
                key=key,
                keyid=keyid,
                created=int(time.time()),
                idempotency_key=uuid.uuid4().hex,
            )

        for headers, code in (
            (signed(Ed25519PrivateKey.generate(), CITY), "signature_invalid"),
            ({}, "signature_missing"),
            (signed(Ed25519PrivateKey.generate(), "110000"), "peer_unknown"),
        ):
            r = await pair.dhttp.request(
                method, path, content=content, headers={**headers, "Content-Type": "application/json"}
            )
            assert r.status_code == 401, (path, code, r.text)
            assert r.json()["code"] == code and r.json()["message"] and r.json()["trace_id"], r.text
            expected.append((path.split("?")[0], code))
    async with pair.district.apps["exchange"].state.db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM subscription"))).scalar_one() == before

    async def recorded() -> set[tuple[str, str]] | None:
        found = {
            (a["route"].split("?")[0], a["reason"])
            for a in await access_events(pair.district.apps["gateway"])
            if "/federation/peer-" in a["route"] and a["outcome"] == "denied" and a["status"] == 401
        }
        return found if found >= set(expected) else None

    assert await eventually(recorded, timeout=20) >= set(expected)


async def test_a_revocation_at_the_owner_stops_the_subscription_and_the_export(pair: Pair) -> None:
    sub = await subscribed(pair, from_start=True)
    r = await until_ok(lambda: changes(pair, sub["id"]))
    assert r.json()["items"]
    grant_id = r.json()["grant_id"]
    r = await pair.chttp.post(EXPORTS, json={"resource_code": pair.mirrored}, headers=pair.civil)
    assert r.status_code == 201, r.text
    export_id = r.json()["id"]

    r = await pair.dhttp.post(f"/api/v1/grants/{grant_id}/revoke", json={"reason": "核验已办结"}, headers=pair.psb)
    assert r.status_code == 200, r.text

    async def stopped() -> httpx.Response | None:
        r = await changes(pair, sub["id"])
        return r if r.status_code == 403 else None

    r = await eventually(stopped, timeout=10)
    assert r.json()["code"] == "no_grant" and r.json()["details"]["origin_platform"] == DISTRICT
    r = await pair.chttp.get(f"{EXPORTS}/{export_id}/download", headers=pair.civil)
    assert r.status_code == 403 and r.json()["code"] == "no_grant", r.text
    r = await pair.chttp.post(SUBSCRIPTIONS, json={"resource_code": pair.mirrored}, headers=pair.civil)
    assert r.status_code == 403 and r.json()["details"]["origin_platform"] == DISTRICT, r.text
