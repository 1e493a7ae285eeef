"""The demo catalog publishes through the public API, covers every share type and class, and can run again."""

from __future__ import annotations

import pytest

from govshare_common.identifiers import is_valid_uscc

from catalog_svc.demo import DEMO_DEPARTMENTS, DEMO_RESOURCES, PLATFORM_ADMIN, seed

API = "/api/v1/catalog"


# Hainan asks most of a registration (secrecy review, policy basis, why a resource is not open): `govshare up
# --demo` under its profile seeds as well.
@pytest.mark.parametrize("profile", ["zhonglou", "hainan"])
async def test_demo_seed_publishes_a_realistic_catalog_and_is_idempotent(catalog, profile: str) -> None:
    assert all(is_valid_uscc(d.code) for d in DEMO_DEPARTMENTS)
    async with catalog(profile=profile) as c:
        tokens = {PLATFORM_ADMIN: c.issuer.token(roles=["platform_admin"], subject="platform-office")}
        for d in DEMO_DEPARTMENTS:
            tokens[d.code] = c.issuer.token(roles=["dept_admin"], department=d.code, subject=f"admin-{d.short}")
        await seed(c.http, tokens)
        await seed(c.http, tokens)

        reader = c.user(["dept_system"], department=DEMO_DEPARTMENTS[0].code)
        body = (await c.http.get(f"{API}/search", params={"limit": 200}, headers=reader)).json()
        assert body["total"] == len(DEMO_RESOURCES)
        facets = {name: {e["value"] for e in entries} for name, entries in body["facets"].items()}
        assert facets["share_type"] == {"unconditional", "conditional", "not_shared"}
        assert facets["resource_class"] == {"base", "thematic", "departmental"}
        assert facets["open_to_public"] == {True, False}
        names = {i["name"] for i in body["items"]}
        assert {"人口基本信息", "法人单位基本信息"} <= names

        # Related codes were resolved to the published codes.
        found = (await c.http.get(f"{API}/search", params={"q": "最低生活保障"}, headers=reader)).json()
        detail = (await c.http.get(f"{API}/resources/{found['items'][0]['id']}", headers=reader)).json()
        population = next(i for i in body["items"] if i["name"] == "人口基本信息")
        assert population["code"] in detail["published"]["related_codes"]
