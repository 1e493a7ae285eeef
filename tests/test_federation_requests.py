"""Cross-level share requests (issue 16 item 4) between two real platforms: 常州市 (the city, `platform`, run under
Xiangyang's rules here so its own deadline is 10 working days) and 钟楼区 (the district, `other_platform`, 5).

A city department applies at home for a district resource mirrored in the city's catalog; the city's request-svc
forwards it, signed, to the district, where the district's provider decides it under the district's profile and
working-day deadline (the real statutory calendar); every change comes back, so the city department sees the
same state, due date, decision and grant at home. Forged and unsigned forwarded requests are refused and
recorded; a retried delivery makes nothing twice; a district away loses nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import chinese_calendar
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway_helpers import access_events, bearer, department_user, setup_department, uscc
from sqlalchemy import text
from test_federation import CITY, DISTRICT, DISTRICT_SETTINGS, district_publisher, peer_up, publish, resource

from govshare_common.identifiers import resident_id_check_char
from govshare_common.message_signatures import sign_request
from govshare_common.testing import eventually
from govshare_common.workdays import CHINA_TZ

from catalog_svc.demo import PSB

CITY_SETTINGS: dict[str, Any] = {
    "platform_division_code": CITY,
    "platform_name": "常州市",
    "platform_level": "prefecture_city",
    "profile": "xiangyang",
    "federation_pull_interval_seconds": 0.2,
}
CITY_CIVIL = uscc("11320400014100001")  # 常州市民政局, the applying department
FORWARDED = "/api/v1/requests/federation/forwarded"
APPLICATION = {
    "items": ["XM", "GMSFHM"],
    "purposes": ["data_verification"],
    "scope": "社会救助经办人员",
    "security_measures": "政务外网访问，全程留痕",
    "business_matter": "社会救助对象身份核验",
}
SERVICES = ("gateway", "catalog", "request")


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def nth_working_day_after(start: Any, n: int) -> Any:
    """An independent oracle: the statutory calendar as chinesecalendar publishes it."""
    d, counted = start, 0
    while counted < n:
        d += timedelta(days=1)
        counted += chinese_calendar.is_workday(d)
    return d


async def city_applicant(city: Any, http: httpx.AsyncClient) -> dict[str, str]:
    admin = bearer(await city.token())
    await setup_department(http, admin, CITY_CIVIL, "常州市民政局")
    return bearer(await department_user(city, http, admin, CITY_CIVIL, "civil_admin", ["dept_admin"]))


async def apply_when_mirrored(city: Any, http: httpx.AsyncClient, code: str, dept: dict[str, str], **body: Any) -> Any:
    """Apply at the city for the district's resource once the city's request-svc knows where it lives."""

    async def applied() -> dict[str, Any] | None:
        r = await http.post("/api/v1/requests", json={**APPLICATION, "resource_code": code, **body}, headers=dept)
        if r.status_code == 422 and r.json()["details"]["fields"][0]["code"] == "unknown_resource":
            return None  # the mirror has not reached request-svc yet
        assert r.status_code == 201, r.text
        return dict(r.json())

    return await eventually(applied, timeout=30)


async def request_at(p: Any, http: httpx.AsyncClient, request_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await http.get(f"/api/v1/requests/{request_id}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def count_requests(p: Any) -> int:
    async with p.apps["request"].state.db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM share_request"))).scalar_one())


async def test_a_city_department_applies_for_a_district_resource_decided_at_the_district_seen_at_home(
    platform, other_platform
) -> None:
    async with (
        platform(*SERVICES, **CITY_SETTINGS) as city,
        other_platform(*SERVICES, profile="zhonglou", **DISTRICT_SETTINGS) as district,
    ):
        await peer_up(city, district)
        async with district.client() as dhttp, city.client() as chttp:
            admin, psb = await district_publisher(district, dhttp)
            await publish(dhttp, resource(1), psb, admin)
            r = await dhttp.get("/api/v1/catalog/resources", params={"provider_code": PSB.code}, headers=admin)
            origin_code = r.json()["items"][0]["code"]
            civil = await city_applicant(city, chttp)

            mirrored = f"{DISTRICT}:{origin_code}"
            made = await apply_when_mirrored(city, chttp, mirrored, civil)
            assert made["state"] in ("forwarding", "submitted") and made["origin_platform"] == DISTRICT
            today = datetime.now(CHINA_TZ).date()

            async def received() -> dict[str, Any] | None:
                shown = await request_at(city, chttp, made["id"], civil)
                return shown if shown["state"] == "submitted" else None

            home = await eventually(received, timeout=30)
            # due on the date the district's profile gives (5 working days, real calendar), not the city's 10
            assert home["due_date"] == nth_working_day_after(today, 5).isoformat()
            assert home["provider_code"] == PSB.code and home["resource_name"] == "户籍人口登记信息第1册"
            assert home["origin_request_id"] and home["profile"] == "zhonglou"

            # handled at the district only: the city's own workflow refuses to act on it
            r = await chttp.post(f"/api/v1/requests/{made['id']}/withdraw", headers=civil)
            assert r.status_code == 409 and r.json()["code"] == "cross_level_request", r.text

            # at the district: an ordinary request to PSB, from the city's department, under the district's rules
            r = await dhttp.get("/api/v1/requests", params={"role": "provider"}, headers=psb)
            assert r.status_code == 200, r.text
            (there,) = r.json()["items"]
            assert there["id"] == home["origin_request_id"]
            assert (there["consumer_code"], there["consumer_platform"]) == (CITY_CIVIL, CITY)
            assert there["due_date"] == home["due_date"] and there["resource_code"] == origin_code

            # a retried delivery (same Idempotency-Key, a fresh signature) answers the first, makes nothing twice
            me = city.apps["request"].state.federation_identity
            url = f"{district.urls['gateway']}{FORWARDED}"
            body = httpx.Request("POST", url, json={}).content  # any body: the first delivery's answer comes back
            headers = sign_request(
                method="POST",
                target_uri=url,
                body=body,
                key=me.key,
                keyid=CITY,
                created=int(time.time()),
                idempotency_key=f"request-{made['id']}",
            )
            r = await dhttp.post(FORWARDED, content=body, headers={**headers, "Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            assert r.json()["origin_request_id"] == there["id"]
            assert await count_requests(district) == 1

            # decided at the district, narrowed to one item; the city sees the decision and the grant at home
            r = await dhttp.post(
                f"/api/v1/requests/{there['id']}/approve",
                json={"items": ["XM"], "comment": "同意核验姓名"},
                headers=psb,
            )
            assert r.status_code == 200, r.text

            async def approved() -> dict[str, Any] | None:
                shown = await request_at(city, chttp, made["id"], civil)
                return shown if shown["state"] == "approved" else None

            home = await eventually(approved, timeout=30)
            assert home["decision_reason"] == "同意核验姓名"
            grant = home["origin_status"]["grant"]
            assert grant["status"] == "active" and grant["items"] == ["XM"]
            assert [h["action"] for h in home["history"]] == ["forwarded", "submitted", "approved"]

            # revoked at the district: the city's record says so, with the reason
            r = await dhttp.post(f"/api/v1/grants/{grant['id']}/revoke", json={"reason": "核验事项已办结"}, headers=psb)
            assert r.status_code == 200, r.text

            async def revoked() -> dict[str, Any] | None:
                g = (await request_at(city, chttp, made["id"], civil))["origin_status"]["grant"]
                return g if g["status"] == "revoked" else None

            assert (await eventually(revoked, timeout=30))["end_reason"] == "核验事项已办结"

            # an application the district's rules refuse comes back refused, the reason in the error shape
            bad = await apply_when_mirrored(city, chttp, mirrored, civil, items=["NO_SUCH_ITEM"])

            async def refused() -> dict[str, Any] | None:
                shown = await request_at(city, chttp, bad["id"], civil)
                return shown if shown["state"] == "forward_refused" else None

            refusal = (await eventually(refused, timeout=30))["origin_status"]["refusal"]
            assert refusal["code"] == "validation_failed" and refusal["message"] and refusal["trace_id"]
            assert refusal["details"]["fields"][0]["code"] == "unknown_items"
            assert await count_requests(district) == 1  # nothing of the refused one stays there


async def test_forged_and_unsigned_forwarded_requests_are_refused_and_recorded(platform, other_platform) -> None:
    async with (
        platform(*SERVICES, **CITY_SETTINGS) as city,
        other_platform(*SERVICES, profile="zhonglou", **DISTRICT_SETTINGS) as district,
    ):
        await peer_up(city, district)

        async def district_knows_the_city() -> bool:
            async with district.apps["request"].state.db.engine.connect() as conn:
                found = await conn.execute(text("SELECT 1 FROM federation_peer WHERE division_code = :c"), {"c": CITY})
                return found.first() is not None

        await eventually(district_knows_the_city, timeout=30)
        url = f"{district.urls['gateway']}{FORWARDED}"
        body = httpx.Request(
            "POST",
            url,
            json={
                **APPLICATION,
                "resource_code": "any",
                "applicant": {"department_code": CITY_CIVIL},
                "request_id": str(uuid.uuid4()),
            },
        ).content

        def signed(key: Ed25519PrivateKey, keyid: str) -> dict[str, str]:
            return sign_request(
                method="POST",
                target_uri=url,
                body=body,
                key=key,
                keyid=keyid,
                created=int(time.time()),
                idempotency_key=uuid.uuid4().hex,
            )

        refusals = {
            "forged": (signed(Ed25519PrivateKey.generate(), CITY), "signature_invalid"),
            "unsigned": ({}, "signature_missing"),
            "unknown": (signed(Ed25519PrivateKey.generate(), "110000"), "peer_unknown"),
        }
        async with district.client() as http:
            for what, (headers, code) in refusals.items():
                r = await http.post(FORWARDED, content=body, headers={**headers, "Content-Type": "application/json"})
                assert r.status_code == 401, (what, r.text)
                answer = r.json()
                assert answer["code"] == code and answer["message"] and answer["trace_id"], (what, answer)
        assert await count_requests(district) == 0

        async def recorded() -> dict[str, dict[str, Any]] | None:
            found = [a for a in await access_events(district.apps["gateway"]) if a["route"].startswith(FORWARDED)]
            denied = {a["reason"]: a for a in found if a["outcome"] == "denied"}
            return denied if len(denied) == len(refusals) else None

        denied = await eventually(recorded, timeout=20)
        assert set(denied) == {code for _, code in refusals.values()}
        assert denied["signature_invalid"]["principal"] == f"peer:{CITY}"
        assert all(a["status"] == 401 for a in denied.values())


async def test_a_request_made_while_the_district_is_away_reaches_it_when_it_is_back(platform, other_platform) -> None:
    async with platform(*SERVICES, **CITY_SETTINGS) as city, city.client() as chttp:
        async with other_platform(*SERVICES, profile="zhonglou", **DISTRICT_SETTINGS) as district:
            await peer_up(city, district)
            async with district.client() as dhttp:
                admin, psb = await district_publisher(district, dhttp)
                await publish(dhttp, resource(1), psb, admin)
                r = await dhttp.get("/api/v1/catalog/resources", params={"provider_code": PSB.code}, headers=admin)
                origin_code = r.json()["items"][0]["code"]
            civil = await city_applicant(city, chttp)
            mirrored = f"{DISTRICT}:{origin_code}"

            async def in_city_requests() -> bool:
                async with city.apps["request"].state.db.engine.connect() as conn:
                    found = await conn.execute(text("SELECT 1 FROM mirrored_resource WHERE code = :c"), {"c": mirrored})
                    return found.first() is not None

            await eventually(in_city_requests, timeout=30)
        # the district is down: the application is taken at home and kept until the district is back
        r = await chttp.post("/api/v1/requests", json={**APPLICATION, "resource_code": mirrored}, headers=civil)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["state"] == "forwarding"

        async def tried() -> dict[str, Any] | None:
            shown = await request_at(city, chttp, made["id"], civil)
            return shown if shown["forward_error"] else None

        assert "unreachable" in (await eventually(tried, timeout=30))["forward_error"]
        async with other_platform(*SERVICES, profile="zhonglou", **DISTRICT_SETTINGS) as district:
            # back at a new address (each start picks its ports): the city's office registers it
            async with district.client() as dhttp:
                ident = (await dhttp.get("/.well-known/govshare-platform")).json()
            r = await chttp.put(
                f"/api/v1/catalog/federation/peers/{DISTRICT}",
                json={
                    "name": ident["name"],
                    "level": ident["level"],
                    "relation": "child",
                    "base_url": district.urls["gateway"],
                    "public_key": ident["public_key"],
                },
                headers=bearer(await city.token()),
            )
            assert r.status_code == 200, r.text

            async def arrived() -> dict[str, Any] | None:
                shown = await request_at(city, chttp, made["id"], civil)
                return shown if shown["state"] == "submitted" else None

            home = await eventually(arrived, timeout=30)
            assert home["forward_error"] is None and home["origin_request_id"]
            assert await count_requests(district) == 1


# --- cross-level online query (issue 16 item 5) ------------------------------------------------------------

PERSON = resident_id("32040419850312123")
QUERYING = (*SERVICES, "exchange", "audit")


async def until_ok(call: Any) -> httpx.Response:
    async def ok() -> httpx.Response | None:
        r = await call()
        return r if r.status_code == 200 else None

    return await eventually(ok, timeout=30)


async def auditor(p: Any, http: httpx.AsyncClient, department: str, username: str) -> dict[str, str]:
    return bearer(await department_user(p, http, bearer(await p.token()), department, username, ["auditor"]))


async def test_the_granted_city_department_queries_the_district_resource_through_its_own_door_masked_by_the_grant(
    platform, other_platform
) -> None:
    async with (
        platform(*QUERYING, **CITY_SETTINGS) as city,
        other_platform(*QUERYING, profile="zhonglou", **DISTRICT_SETTINGS) as district,
    ):
        await peer_up(city, district)
        async with district.client() as dhttp, city.client() as chttp:
            admin, psb = await district_publisher(district, dhttp)
            await publish(dhttp, resource(1), psb, admin)
            r = await dhttp.get("/api/v1/catalog/resources", params={"provider_code": PSB.code}, headers=admin)
            origin_code = r.json()["items"][0]["code"]
            line = json.dumps({"GMSFHM": PERSON, "XM": "张三丰", "HJDZ": "常州市钟楼区南大街1号", "MZ": "01"})
            await until_ok(
                lambda: dhttp.post(
                    f"/api/v1/exchange/resources/{quote(origin_code, safe='')}/batches",
                    params={"batch_id": "b1", "format": "jsonl"},
                    content=line.encode() + b"\n",
                    headers=psb,
                )
            )
            civil = await city_applicant(city, chttp)
            mirrored = f"{DISTRICT}:{origin_code}"
            records = f"/api/v1/exchange/federation/records/{quote(mirrored, safe='')}"
            ask = {**civil, "X-Govshare-Purpose": "data_verification"}

            # before any grant, the owner refuses, and the city passes its refusal on in the error shape
            r = await until_ok_or_refused(lambda: chttp.get(records, params={"subject": PERSON}, headers=ask))
            assert r.status_code == 403 and r.json()["code"] == "no_grant", r.text
            assert r.json()["details"]["origin_platform"] == DISTRICT and r.json()["trace_id"]

            made = await apply_when_mirrored(city, chttp, mirrored, civil)

            async def received() -> str | None:
                shown = await request_at(city, chttp, made["id"], civil)
                return shown["origin_request_id"] if shown["state"] == "submitted" else None

            there = await eventually(received, timeout=30)
            r = await dhttp.post(f"/api/v1/requests/{there}/approve", json={"items": ["XM", "GMSFHM"]}, headers=psb)
            assert r.status_code == 200, r.text

            # the city department asks its own door; the district answers by its grant: two items, masked
            r = await until_ok(lambda: chttp.get(records, params={"subject": PERSON}, headers=ask))
            answer = r.json()
            assert answer["origin_platform"] == DISTRICT and answer["total"] == 1
            data = answer["items"][0]["data"]
            assert set(data) == {"XM", "GMSFHM"}  # the address and ethnicity were not granted
            assert data["XM"] != "张三丰" and data["XM"].startswith("张")
            assert data["GMSFHM"] != PERSON and "*" in data["GMSFHM"]
            assert sorted(answer["masked_items"]) == ["GMSFHM", "XM"]

            # each side's audit trail finds the cross-level access by the person's ID number
            for p, http, dept, who in ((city, chttp, CITY_CIVIL, "city_auditor"), (district, dhttp, PSB.code, "d_aud")):
                headers = await auditor(p, http, dept, who)

                async def traced(http: httpx.AsyncClient = http, headers: dict[str, str] = headers) -> Any:
                    r = await http.post("/api/v1/audit/trace/subject", json={"identifier": PERSON}, headers=headers)
                    assert r.status_code == 200, r.text
                    hits = [h for h in r.json()["items"] if h["type"] == "exchange.access"]
                    return hits or None

                (hit,) = await eventually(traced, timeout=30)
                assert hit["data"]["department_code"] == CITY_CIVIL and hit["data"]["rows"] == 1
                if p is city:
                    assert (hit["data"]["basis"], hit["data"]["origin_platform"]) == ("cross_level", DISTRICT)
                    assert hit["data"]["resource_code"] == mirrored
                else:
                    assert hit["data"]["principal"].startswith(f"peer:{CITY}:")
                    assert hit["data"]["resource_code"] == origin_code

            # revoked at the district: the city department's next queries are refused
            grant_id = answer["grant_id"]
            r = await dhttp.post(f"/api/v1/grants/{grant_id}/revoke", json={"reason": "核验已办结"}, headers=psb)
            assert r.status_code == 200, r.text

            async def stopped() -> httpx.Response | None:
                r = await chttp.get(records, params={"subject": PERSON}, headers=ask)
                return r if r.status_code == 403 else None

            r = await eventually(stopped, timeout=10)
            assert r.json()["code"] == "no_grant" and r.json()["details"]["origin_platform"] == DISTRICT


async def until_ok_or_refused(call: Any) -> httpx.Response:
    """The first answer that is the owner's own (not a 404 while the mirror or grant projections catch up)."""

    async def settled() -> httpx.Response | None:
        r = await call()
        return r if r.status_code in (200, 403) else None

    return await eventually(settled, timeout=30)


async def test_a_district_department_applies_for_a_city_cross_level_resource_decided_at_the_city(
    platform, other_platform
) -> None:
    """The other direction (the parent's cross-level resource mirrored at the child): due by the city's profile
    (Xiangyang's 10 working days here, the district's own being 5), decided at the city, seen at the district."""
    from test_federation_downward import CITY_CIVIL_CODE, CITY_CIVIL_NAME, city_resource

    async with (
        platform(*SERVICES, **CITY_SETTINGS) as city,
        other_platform(*SERVICES, profile="zhonglou", **DISTRICT_SETTINGS) as district,
    ):
        await peer_up(city, district)
        async with city.client() as chttp, district.client() as dhttp:
            city_admin = bearer(await city.token())
            await setup_department(chttp, city_admin, CITY_CIVIL_CODE, CITY_CIVIL_NAME)
            civil = bearer(await department_user(city, chttp, city_admin, CITY_CIVIL_CODE, "mz_admin", ["dept_admin"]))
            await publish(chttp, city_resource("城市最低生活保障对象信息", cross_level=True), civil, city_admin)
            r = await chttp.get("/api/v1/catalog/resources", params={"provider_code": CITY_CIVIL_CODE}, headers=civil)
            origin_code = r.json()["items"][0]["code"]
            _admin, psb = await district_publisher(district, dhttp)  # 钟楼区公安局 applies

            made = await apply_when_mirrored(district, dhttp, f"{CITY}:{origin_code}", psb)
            today = datetime.now(CHINA_TZ).date()

            async def received() -> dict[str, Any] | None:
                shown = await request_at(district, dhttp, made["id"], psb)
                return shown if shown["state"] == "submitted" else None

            home = await eventually(received, timeout=30)
            assert home["due_date"] == nth_working_day_after(today, 10).isoformat()
            assert home["provider_code"] == CITY_CIVIL_CODE and home["profile"] == "xiangyang"

            r = await chttp.post(
                f"/api/v1/requests/{home['origin_request_id']}/reject",
                json={"reason": "超出本市共享范围"},
                headers=civil,
            )
            assert r.status_code == 200, r.text

            async def refused() -> dict[str, Any] | None:
                shown = await request_at(district, dhttp, made["id"], psb)
                return shown if shown["state"] == "rejected" else None

            assert (await eventually(refused, timeout=30))["decision_reason"] == "超出本市共享范围"
