"""Federation downward between two real platforms: the city's resources shared across levels (`cross_level`)
are visible to the district's departments — in its catalog and search, with their origin, read-only — and
only those; withdrawn or no longer cross-level at the city, they are gone at the district.
"""

from __future__ import annotations

from typing import Any

import httpx
from gateway_helpers import bearer, department_user, setup_department
from published_resources import RESOURCE
from test_federation import CITY, CITY_SETTINGS, DISTRICT, DISTRICT_SETTINGS, district_publisher, peer_up, publish

from govshare_common.identifiers import uscc_check_char
from govshare_common.testing import eventually

from catalog_svc.demo import PSB

CITY_CIVIL_CODE = "11320400MB1234504" + uscc_check_char("11320400MB1234504")
CITY_CIVIL_NAME = "常州市民政局"


def city_resource(name: str, **changes: Any) -> dict[str, Any]:
    return {
        **RESOURCE,
        "category_name": "民政",
        "name": name,
        "summary": f"{name}，含救助对象的姓名和公民身份号码。",
        "provider_code": CITY_CIVIL_CODE,
        "provider_name": CITY_CIVIL_NAME,
        **changes,
    }


async def republish(
    http: httpx.AsyncClient, rid: str, body: dict[str, Any], dept: dict[str, str], admin: dict[str, str]
) -> None:
    r = await http.put(
        f"/api/v1/catalog/resources/{rid}/draft", json={**body, "change_reason": "共享范围调整"}, headers=dept
    )
    assert r.status_code == 200, r.text
    assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=dept)).status_code == 200
    r = await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)
    assert r.status_code == 200, r.text


async def test_the_citys_cross_level_resources_and_only_those_are_found_by_the_districts_departments(
    platform, other_platform
) -> None:
    async with (
        platform("gateway", "catalog", **CITY_SETTINGS) as city,
        other_platform("gateway", "catalog", **DISTRICT_SETTINGS) as district,
    ):
        await peer_up(city, district)
        async with city.client() as chttp, district.client() as dhttp:
            city_admin = bearer(await city.token())
            await setup_department(chttp, city_admin, CITY_CIVIL_CODE, CITY_CIVIL_NAME)
            city_dept = bearer(
                await department_user(city, chttp, city_admin, CITY_CIVIL_CODE, "mz_admin", ["dept_admin"])
            )
            district_admin, district_dept = await district_publisher(district, dhttp)

            # the mark is the provider's, and checked: what is not shared cannot be shared across levels
            r = await chttp.post(
                "/api/v1/catalog/resources",
                json=city_resource(
                    "城市涉密救助档案", share_type="not_shared", legal_basis="《保密法》", cross_level=True
                ),
                headers=city_dept,
            )
            assert r.status_code == 422, r.text
            assert r.json()["code"] == "validation_failed" and "cross_level" in r.text, r.text

            # not shared across levels (the default), then one that is
            kept = await publish(chttp, city_resource("城市临时救助记录"), city_dept, city_admin)
            shared_body = city_resource("城市最低生活保障对象信息", cross_level=True)
            shared = await publish(chttp, shared_body, city_dept, city_admin)

            async def listed_at_district() -> dict[str, Any]:
                r = await dhttp.get(
                    "/api/v1/catalog/resources", params={"provider_code": CITY_CIVIL_CODE}, headers=district_dept
                )
                assert r.status_code == 200, r.text
                return dict(r.json())

            async def found_at_district(q: str) -> list[str]:
                r = await dhttp.get("/api/v1/catalog/search", params={"q": q}, headers=district_dept)
                assert r.status_code == 200, r.text
                return [i["id"] for i in r.json()["items"]]

            async def shown() -> dict[str, Any] | None:
                items = (await listed_at_district())["items"]
                return dict(items[0]) if items else None

            item = await eventually(shown, timeout=30)
            assert item["id"] == shared and item["name"] == "城市最低生活保障对象信息"
            assert item["origin"] == {"division_code": CITY, "name": "常州市", "level": "prefecture_city"}
            assert (item["provider_code"], item["provider_name"]) == (CITY_CIVIL_CODE, CITY_CIVIL_NAME)
            r = await chttp.get(f"/api/v1/catalog/resources/{shared}", headers=city_admin)
            # listed under the code a district department applies and queries by; the city's own code beside it
            assert (item["code"], item["origin_code"]) == (f"{CITY}:{r.json()['code']}", r.json()["code"])
            assert await eventually(lambda: found_at_district("最低生活保障"), timeout=10) == [shared]
            # the one not shared across levels was published before it and passed over: never at the district
            assert (await listed_at_district())["total"] == 1
            assert kept not in await found_at_district("城市临时救助记录")
            r = await dhttp.get(f"/api/v1/catalog/resources/{kept}", headers=district_dept)
            assert r.status_code == 404, r.text

            # read-only at the district: maintained at the city
            r = await dhttp.post(
                f"/api/v1/catalog/resources/{shared}/withdraw", json={"reason": "试图撤销"}, headers=district_admin
            )
            assert r.status_code == 403 and r.json()["code"] == "mirrored_resource", r.text

            # the district's own cross-level resource goes up to the city, and does not come back down as the city's
            own = await publish(
                dhttp, {**RESOURCE, "name": "钟楼区户籍人口信息", "cross_level": True}, district_dept, district_admin
            )

            async def at_city() -> bool:
                r = await chttp.get("/api/v1/catalog/resources", params={"provider_code": PSB.code}, headers=city_admin)
                items = r.json()["items"]
                return [(i["id"], (i.get("origin") or {}).get("division_code")) for i in items] == [(own, DISTRICT)]

            await eventually(at_city, timeout=30)

            # no longer cross-level at the city: gone at the district, catalog and search
            await republish(chttp, shared, {**shared_body, "cross_level": False}, city_dept, city_admin)

            async def gone() -> bool:
                return (await listed_at_district())["total"] == 0 and await found_at_district("最低生活保障") == []

            await eventually(gone, timeout=30)

            # shared across levels again, then withdrawn at the city: back, then gone
            await republish(chttp, shared, shared_body, city_dept, city_admin)
            await eventually(shown, timeout=30)
            r = await chttp.post(
                f"/api/v1/catalog/resources/{shared}/withdraw", json={"reason": "停止共享"}, headers=city_dept
            )
            assert r.status_code == 200, r.text
            await eventually(gone, timeout=30)

            # the district's own resource is still its own, once
            r = await dhttp.get("/api/v1/catalog/resources", params={"provider_code": PSB.code}, headers=district_dept)
            assert [(i["id"], i.get("origin")) for i in r.json()["items"]] == [(own, None)], r.text
            # operations at the district: the city is caught up, nothing of it mirrored now
            r = await dhttp.get(f"/api/v1/catalog/federation/peers/{CITY}", headers=district_admin)
            assert r.status_code == 200, r.text
            fed = r.json()["feed"]
            assert fed["lag_changes"] == 0 and fed["mirrored_resources"] == 0 and fed["failing"] is False, fed
