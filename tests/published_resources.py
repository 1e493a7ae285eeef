"""Catalog entries the cross-service journeys publish: complete enough for the catalog's every rule."""

from __future__ import annotations

from typing import Any

from catalog_svc.demo import PSB

RESOURCE: dict[str, Any] = {
    "resource_class": "departmental",
    "category_code": "01",
    "category_name": "公安",
    "subcategory_code": "002",
    "subcategory_name": "户政管理",
    "name": "户籍人口登记信息",
    "summary": "户籍人口的登记信息，含姓名、公民身份号码和户籍地址。",
    "provider_code": PSB.code,
    "provider_name": PSB.name,
    "format_category": "database",
    "format_detail": "关系型数据库表",
    "data_items": [
        {
            "name": "GMSFHM",
            "label": "公民身份号码",
            "data_type": "C",
            "length": 18,
            "required": True,
            "identifier_kind": "resident_id",
            "sensitivity": "personal",
            "masking_rule": "resident_id",
        },
        {
            "name": "XM",
            "label": "姓名",
            "data_type": "C",
            "length": 50,
            "sensitivity": "personal",
            "masking_rule": "name",
        },
        {
            "name": "HJDZ",
            "label": "户籍地址",
            "data_type": "C",
            "length": 200,
            "sensitivity": "personal",
            "masking_rule": "address",
        },
        {"name": "MZ", "label": "民族", "data_type": "C", "length": 2, "sensitivity": "public"},
    ],
    "share_type": "conditional",
    "share_conditions": "仅限社会救助对象身份核验。",
    "share_method_class": "platform",
    "share_method_type": "interface",
    "update_cycle": "daily",
}


async def publish(
    http: Any, resource: dict[str, Any], *, dept_admin: dict[str, str], platform_admin: dict[str, str]
) -> str:
    """Create, submit and publish `resource` through the gateway; returns its code."""
    r = await http.post("/api/v1/catalog/resources", json=resource, headers=dept_admin)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=dept_admin)).status_code == 200
    r = await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=platform_admin)
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


async def demo_catalog(p: Any, http: Any) -> dict[str, str]:
    """The demo identities and the demo catalog, seeded through the gateway as `govshare up --demo` does; returns
    the tokens the seeds take (the platform office's under "platform_admin", a dept_admin's per department)."""
    from govshare_stack.demo_steps import departments

    from catalog_svc.demo import PLATFORM_ADMIN
    from catalog_svc.demo import seed as seed_catalog
    from gateway.demo import DEMO_PASSWORD
    from gateway.demo import seed as seed_identities

    admin = await p.token()
    await seed_identities(http, admin, departments())
    tokens = {PLATFORM_ADMIN: admin}
    for code, _name, short in departments()[1:]:
        tokens[code] = await p.token(f"{short}_admin", DEMO_PASSWORD)
    await seed_catalog(http, tokens)
    return tokens
