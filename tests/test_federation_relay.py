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

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_helpers import bearer, department_user, setup_department, uscc
from published_resources import RESOURCE
from test_federation import district_publisher, publish, withdraw
from test_federation_requests import resident_id

from conftest import separate_platform
from govshare_common.testing import eventually

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
async def network(postgres: Any, broker: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Network]:
    """The three platforms, started once for the module and peered as their offices would: each district
    registers the city as its parent, the city registers both districts as children."""
    root = Path(tmp_path_factory.mktemp("relay"))
    async with (
        separate_platform(postgres, broker, root / "city", "city-platform-test-secret-0123456789ab") as city_start,
        separate_platform(postgres, broker, root / "zl", "zhonglou-platform-test-secret-0123456789") as zl_start,
        separate_platform(postgres, broker, root / "tn", "tianning-platform-test-secret-0123456789") as tn_start,
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


async def test_a_districts_cross_level_resource_reaches_its_sibling_through_the_city_and_leaves_with_its_withdrawal(
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
