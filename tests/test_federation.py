"""Federation between two real platforms in one session: 常州市 (the city, `platform`) and 钟楼区 (the district,
`other_platform`), each with its own database, topics, master secret, gateway and door.

The district's published catalog flows to the city as a signed, pull-based change feed; peer calls that are
forged, from an unknown platform, stale or replayed are refused in the error shape and recorded as denied
accesses; a city away while the district changes 100 resources converges when it is back, each change once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway_helpers import access_events, bearer, department_user, setup_department
from published_resources import RESOURCE

from govshare_common.message_signatures import sign_request
from govshare_common.testing import eventually

from catalog_svc.demo import PSB

CITY = "320400"
DISTRICT = "320404"
FEED = "/api/v1/catalog/federation/changes"
CITY_SETTINGS: dict[str, Any] = {
    "platform_division_code": CITY,
    "platform_name": "常州市",
    "platform_level": "prefecture_city",
    "profile": "zhonglou",
    "federation_pull_interval_seconds": 0.2,
}
DISTRICT_SETTINGS: dict[str, Any] = {
    "platform_division_code": DISTRICT,
    "platform_name": "常州市钟楼区",
    "platform_level": "district",
    "federation_pull_interval_seconds": 0.2,
}


async def _identity(p: Any) -> dict[str, Any]:
    async with p.client() as http:
        r = await http.get("/.well-known/govshare-platform")  # anonymous, as a peer's office reads it
        assert r.status_code == 200, r.text
        return dict(r.json())


async def peer_up(city: Any, district: Any) -> None:
    """Each platform office registers the other, with what the other publishes at its well-known URL."""
    city_id, district_id = await _identity(city), await _identity(district)
    assert (city_id["division_code"], city_id["level"]) == (CITY, "prefecture_city")
    assert (district_id["division_code"], district_id["name"]) == (DISTRICT, "常州市钟楼区")
    for here, there, ident, relation in ((district, city, city_id, "parent"), (city, district, district_id, "child")):
        async with here.client() as http:
            r = await http.post(
                "/api/v1/catalog/federation/peers",
                json={
                    "division_code": ident["division_code"],
                    "name": ident["name"],
                    "level": ident["level"],
                    "relation": relation,
                    "base_url": there.urls["gateway"],
                    "public_key": ident["public_key"],
                },
                headers=bearer(await here.token()),
            )
            assert r.status_code == 201, r.text


async def district_publisher(p: Any, http: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    admin = bearer(await p.token())
    await setup_department(http, admin, PSB.code, PSB.name)
    dept = bearer(await department_user(p, http, admin, PSB.code, "psb_admin", ["dept_admin"]))
    return admin, dept


def resource(i: int, **changes: Any) -> dict[str, Any]:
    return {**RESOURCE, "name": f"户籍人口登记信息第{i}册", **changes}


async def publish(http: httpx.AsyncClient, body: dict[str, Any], dept: dict[str, str], admin: dict[str, str]) -> str:
    r = await http.post("/api/v1/catalog/resources", json=body, headers=dept)
    assert r.status_code == 201, r.text
    rid = str(r.json()["id"])
    r = await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=dept)
    assert r.status_code == 200, r.text
    r = await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)
    assert r.status_code == 200, r.text
    return rid


async def update(
    http: httpx.AsyncClient, rid: str, body: dict[str, Any], dept: dict[str, str], admin: dict[str, str]
) -> None:
    r = await http.put(
        f"/api/v1/catalog/resources/{rid}/draft", json={**body, "change_reason": "摘要更正"}, headers=dept
    )
    assert r.status_code == 200, r.text
    assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=dept)).status_code == 200
    r = await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)
    assert r.status_code == 200, r.text


async def withdraw(http: httpx.AsyncClient, rid: str, dept: dict[str, str]) -> None:
    r = await http.post(f"/api/v1/catalog/resources/{rid}/withdraw", json={"reason": "数据源停用"}, headers=dept)
    assert r.status_code == 200, r.text


async def city_catalog(city: Any, http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await http.get(
        "/api/v1/catalog/resources",
        params={"provider_code": PSB.code, "limit": 200, **params},
        headers=bearer(await city.token()),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def in_parallel(jobs: list[Callable[[], Awaitable[Any]]], width: int = 4) -> list[Any]:
    gate = asyncio.Semaphore(width)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def test_published_updated_withdrawn_at_the_district_shows_changes_and_disappears_at_the_city(
    platform, other_platform
) -> None:
    async with (
        platform("gateway", "catalog", **CITY_SETTINGS) as city,
        other_platform("gateway", "catalog", **DISTRICT_SETTINGS) as district,
    ):
        await peer_up(city, district)
        async with district.client() as dhttp, city.client() as chttp:
            admin, dept = await district_publisher(district, dhttp)
            rid = await publish(dhttp, resource(1), dept, admin)

            async def shown() -> dict[str, Any] | None:
                items = (await city_catalog(city, chttp))["items"]
                return dict(items[0]) if len(items) == 1 else None

            item = await eventually(shown, timeout=30)
            assert item["id"] == rid and item["name"] == "户籍人口登记信息第1册"
            assert item["origin"] == {"division_code": DISTRICT, "name": "常州市钟楼区", "level": "district"}
            assert (item["provider_code"], item["provider_name"]) == (PSB.code, PSB.name)
            # and in the city's full-text search
            r = await chttp.get("/api/v1/catalog/search", params={"q": "户籍人口"}, headers=bearer(await city.token()))
            assert r.status_code == 200, r.text
            assert [i["id"] for i in r.json()["items"]] == [rid]

            # the city's office cannot withdraw or change what the district maintains
            r = await chttp.post(
                f"/api/v1/catalog/resources/{rid}/withdraw",
                json={"reason": "试图撤销"},
                headers=bearer(await city.token()),
            )
            assert r.status_code == 403 and r.json()["code"] == "mirrored_resource", r.text

            await update(dhttp, rid, resource(1, summary="户籍人口登记信息（2026年版）。"), dept, admin)

            async def changed() -> bool:
                return ((await shown()) or {}).get("summary") == "户籍人口登记信息（2026年版）。"

            await eventually(changed, timeout=30)

            await withdraw(dhttp, rid, dept)

            async def gone() -> bool:
                if (await city_catalog(city, chttp))["total"] != 0:
                    return False
                r = await chttp.get(
                    "/api/v1/catalog/search", params={"q": "户籍人口"}, headers=bearer(await city.token())
                )
                return bool(r.json()["total"] == 0)

            await eventually(gone, timeout=30)

            # operations: the peer's cursor is at the district's head, nothing behind, the last pull a success
            r = await chttp.get(f"/api/v1/catalog/federation/peers/{DISTRICT}", headers=bearer(await city.token()))
            assert r.status_code == 200, r.text
            fed = r.json()["feed"]
            assert fed["cursor"] == fed["peer_head"] and fed["lag_changes"] == 0
            assert fed["received_changes"] == 3 and fed["mirrored_resources"] == 0
            assert fed["last_success_at"] is not None and fed["failing"] is False
            # a full resync reads the whole feed again: the one tombstone, nothing mirrored twice
            r = await chttp.post(
                f"/api/v1/catalog/federation/peers/{DISTRICT}/resync", headers=bearer(await city.token())
            )
            assert r.status_code == 202, r.text

            async def resynced() -> dict[str, Any] | None:
                r = await chttp.get(f"/api/v1/catalog/federation/peers/{DISTRICT}", headers=bearer(await city.token()))
                fed = r.json()["feed"]
                return fed if fed["received_changes"] == 4 and fed["cursor"] == fed["peer_head"] else None

            assert (await eventually(resynced, timeout=30))["mirrored_resources"] == 0
            assert (await city_catalog(city, chttp))["total"] == 0
            # peers are the platform office's: a department's token is refused
            r = await dhttp.get("/api/v1/catalog/federation/peers", headers=dept)
            assert r.status_code == 403, r.text


def _signed(key: Ed25519PrivateKey, keyid: str, url: str, *, created: int | None = None) -> dict[str, str]:
    return sign_request(
        method="GET",
        target_uri=url,
        body=b"",
        key=key,
        keyid=keyid,
        created=int(time.time()) if created is None else created,
        idempotency_key=uuid.uuid4().hex,
    )


async def test_forged_unknown_stale_and_replayed_peer_calls_are_refused_and_recorded(platform, other_platform) -> None:
    async with (
        platform("gateway", "catalog", **CITY_SETTINGS) as city,
        other_platform("gateway", "catalog", **DISTRICT_SETTINGS) as district,
    ):
        await peer_up(city, district)
        city_key = city.apps["catalog"].state.federation_identity.key
        url = f"{district.urls['gateway']}{FEED}?after=0"
        async with district.client() as http:
            genuine = _signed(city_key, CITY, url)
            r = await http.get(url, headers=genuine)
            assert r.status_code == 200, r.text
            assert r.json()["platform"]["division_code"] == DISTRICT and "Signature" in r.headers

            refusals = {
                "replayed": (genuine, "nonce_replayed"),
                "forged": (_signed(Ed25519PrivateKey.generate(), CITY, url), "signature_invalid"),
                "unknown": (_signed(Ed25519PrivateKey.generate(), "110000", url), "peer_unknown"),
                "stale": (_signed(city_key, CITY, url, created=int(time.time()) - 3600), "signature_expired"),
                "unsigned": ({}, "signature_missing"),
                "other address": (_signed(city_key, CITY, url.replace("after=0", "after=1")), "signature_invalid"),
            }
            for what, (headers, code) in refusals.items():
                r = await http.get(url, headers=headers)
                assert r.status_code == 401, (what, r.text)
                body = r.json()
                assert body["code"] == code and body["message"] and body["trace_id"], (what, body)
                assert "X-Govshare-Reason" not in r.headers  # the reason goes to the access record, not the caller

        async def recorded() -> list[dict[str, Any]] | None:
            # the city's own pulls (every 0.2 s) are allowed accesses too
            found = [a for a in await access_events(district.apps["gateway"]) if a["route"].startswith(FEED)]
            return found if len([a for a in found if a["outcome"] == "denied"]) == len(refusals) else None

        accesses = await eventually(recorded, timeout=20)
        allowed = [a for a in accesses if a["outcome"] == "allowed"]
        assert allowed and all((a["status"], a["principal"]) == (200, f"peer:{CITY}") for a in allowed)
        denied = {a["reason"]: a for a in accesses if a["outcome"] == "denied"}
        assert set(denied) == {code for _, code in refusals.values()}
        assert all(a["status"] == 401 for a in denied.values())
        assert denied["peer_unknown"]["principal"] == "peer:110000"
        assert denied["nonce_replayed"]["principal"] == f"peer:{CITY}"


async def test_a_city_away_while_the_district_makes_100_changes_converges_each_change_once(
    platform, other_platform
) -> None:
    async with other_platform("gateway", "catalog", **DISTRICT_SETTINGS) as district:
        async with district.client() as door:
            admin, dept = await district_publisher(district, door)
        # The district's changes go to the catalog's own port: the door is not what this is about, and its 10 s
        # upstream timeout is short for a publication on a loaded machine.
        async with httpx.AsyncClient(base_url=district.direct["catalog"], timeout=60.0) as dhttp:
            async with platform("gateway", "catalog", **CITY_SETTINGS) as city:
                await peer_up(city, district)
                first = await in_parallel(
                    [lambda i=i: publish(dhttp, resource(i), dept, admin) for i in range(20)],  # type: ignore[misc]
                    width=2,
                )
                async with city.client() as chttp:

                    async def all_twenty() -> bool:
                        return bool((await city_catalog(city, chttp))["total"] == 20)

                    await eventually(all_twenty, timeout=60)

            # the city is down: 10 updates, 10 withdrawals and 80 publications at the district
            jobs: list[Callable[[], Awaitable[Any]]] = []
            for n, rid in enumerate(first[:10]):
                jobs.append(
                    lambda n=n, rid=rid: update(dhttp, rid, resource(n, summary=f"第{n}册已更正。"), dept, admin)
                )
            jobs += [lambda rid=rid: withdraw(dhttp, rid, dept) for rid in first[10:]]
            jobs += [lambda i=i: publish(dhttp, resource(i), dept, admin) for i in range(100, 180)]  # type: ignore[misc]
            await in_parallel(jobs, width=2)

            async with platform("gateway", "catalog", **CITY_SETTINGS) as city, city.client() as chttp:

                async def converged() -> dict[str, Any] | None:
                    listed = await city_catalog(city, chttp, limit=200)
                    # (a listing's count and its page are two statements: one may see a page applied the other not)
                    return listed if listed["total"] == len(listed["items"]) == 90 else None

                listed = await eventually(converged, timeout=90)
                ids = [i["id"] for i in listed["items"]]
                assert (len(ids), len(set(ids))) == (90, 90), (listed["total"], listed["limit"], len(ids))
                assert not set(first[10:]) & set(ids)
                summaries = {i["id"]: i["summary"] for i in listed["items"]}
                assert all(summaries[rid] == f"第{n}册已更正。" for n, rid in enumerate(first[:10]))

                r = await chttp.get(f"/api/v1/catalog/federation/peers/{DISTRICT}", headers=bearer(await city.token()))
                fed = r.json()["feed"]
                # 20 before the city went away, then the district's 100 changes, each received once
                assert fed["received_changes"] == 120 and fed["lag_changes"] == 0, fed
                assert fed["mirrored_resources"] == 90
