"""The catalog behind the gateway: departments publish through the door, and the gateway learns each resource."""

from __future__ import annotations

import asyncio

from published_resources import demo_catalog

from catalog_svc.demo import PLATFORM_ADMIN


async def test_demo_catalog_published_through_the_gateway_reaches_its_resource_projection(platform) -> None:
    async with platform("gateway", "catalog") as p:
        gw = p.apps["gateway"]
        async with p.client() as http:
            tokens = await demo_catalog(p, http)
            admin = tokens[PLATFORM_ADMIN]

            published = (
                await http.get(
                    "/api/v1/catalog/resources", params={"limit": 200}, headers={"Authorization": f"Bearer {admin}"}
                )
            ).json()
            items = published["items"]
            assert items, published
            expected = {i["code"]: i["share_type"] for i in items}

            for _ in range(100):
                if all(code in gw.state.live.resources for code in expected):
                    break
                await asyncio.sleep(0.1)
            projected = {code: gw.state.live.resources[code].share_type for code in expected}
            assert projected == expected
            assert {"unconditional", "conditional", "not_shared"} <= set(projected.values())

            # anonymous callers read the open catalog through the gateway, and nothing else
            assert (await http.get("/api/v1/catalog/open")).status_code == 200
            assert (await http.get("/api/v1/catalog/resources")).status_code == 401
