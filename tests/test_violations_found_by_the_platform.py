"""Violations the platform finds by itself (issue 17 item 9), each a rectification notice with the profile's
deadline (`rectification_wd`; a custom profile sets 7 working days, so a hard-coded 10 fails the test):

- repeated collection (000 Art.15, 003 Art.14, 39): a department publishes a resource whose items, apart from
  the identifiers, are mostly a base resource's of another department; a resource that only carries the
  identifier and a name beside its own items is not one;
- a project catalog missing at acceptance (003 Art.39 (二), 004 Art.31): acceptance is refused and the
  department is noticed; once the catalog is published the project is accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from gateway_helpers import bearer
from sqlalchemy import text

from govshare_common.profiles import PROFILES
from govshare_common.testing import eventually
from govshare_stack.demo_steps import departments

from catalog_svc.demo import CIVIL, DEMO_RESOURCES, HRSS, PSB
from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities

RECTIFICATION_WD = 7


def demo_resource(name: str) -> dict[str, Any]:
    return next(dict(fields) for _dept, fields, _related in DEMO_RESOURCES if fields["name"] == name)


POPULATION = demo_resource("人口基本信息")  # base, the police bureau's
INSURANCE = demo_resource("社会保险参保缴费信息")  # carries GMSFHM and XM beside three items of its own
HARDSHIP = {
    **demo_resource("最低生活保障对象信息"),
    "name": "困难群众人口信息",
    "summary": "困难群众的姓名、性别、出生日期和户籍地址，由民政局自行采集。",
    "data_items": [
        {"name": "GMSFHM", "label": "公民身份号码", "data_type": "C", "length": 18, "identifier_kind": "resident_id"},
        {"name": "XM", "label": "姓名", "data_type": "C", "length": 50},
        {"name": "XB", "label": "性别", "data_type": "C", "length": 1},
        {"name": "CSRQ", "label": "出生日期", "data_type": "D"},
        {"name": "JZDZ", "label": "户籍地址", "data_type": "C", "length": 200},
        {"name": "KNLX", "label": "困难类型", "data_type": "C", "length": 20},
    ],
}


async def publish(http: httpx.AsyncClient, body: dict[str, Any], dept: dict[str, str], admin: dict[str, str]) -> str:
    r = await http.post("/api/v1/catalog/resources", json=body, headers=dept)
    assert r.status_code == 201, r.text
    rid = str(r.json()["id"])
    assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=dept)).status_code == 200
    r = await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)
    assert r.status_code == 200, r.text
    return rid


async def catalog_events(app: Any, type_: str) -> list[dict[str, Any]]:
    async with app.state.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT data FROM outbox WHERE type = :t ORDER BY id"), {"t": type_})
        return [r[0] for r in rows]


async def test_repeated_collection_and_a_missing_project_catalog_draw_notices_with_the_profiles_deadline(
    platform, tmp_path: Path
) -> None:
    custom = tmp_path / "profile.json"
    custom.write_text(
        PROFILES["zhonglou"].model_copy(update={"rectification_wd": RECTIFICATION_WD}).model_dump_json(),
        encoding="utf-8",
    )
    async with (
        platform("gateway", "catalog", "audit", profile="custom", profile_file=str(custom)) as p,
        p.client() as http,
    ):
        catalog = p.apps["catalog"]
        admin_token = await p.token()
        await seed_identities(http, admin_token, departments())
        short = {code: s for code, _n, s in departments()}
        admin = bearer(admin_token)
        psb, hrss, civil = [bearer(await p.token(f"{short[d.code]}_admin", DEMO_PASSWORD)) for d in (PSB, HRSS, CIVIL)]

        await publish(http, POPULATION, psb, admin)
        await publish(http, INSURANCE, hrss, admin)
        hardship_id = await publish(http, HARDSHIP, civil, admin)
        found = await catalog_events(catalog, "catalog.collection.repeated")
        assert [(e["resource_id"], e["provider_code"], e["duplicated_items"]) for e in found] == [
            (hardship_id, CIVIL.code, ["XM", "XB", "CSRQ", "JZDZ"])
        ]
        assert found[0]["base_resource_name"] == "人口基本信息"

        async def notices(violation: str) -> list[dict[str, Any]]:
            r = await http.get("/api/v1/supervision/notices", params={"violation": violation}, headers=admin)
            assert r.status_code == 200, r.text
            return list(r.json()["items"])

        async def noticed(violation: str) -> dict[str, Any] | None:
            found = await notices(violation)
            return found[0] if found else None

        async def due(opened_on: str) -> str:
            r = await http.get(
                "/api/v1/platform/calendar/deadline",
                params={"start": opened_on, "working_days": RECTIFICATION_WD},
                headers=admin,
            )
            return str(r.json()["due"])

        repeated = await eventually(lambda: noticed("repeated_collection"), timeout=15.0)
        assert repeated["department_code"] == CIVIL.code
        assert repeated["working_days"] == RECTIFICATION_WD
        assert repeated["due_on"] == await due(repeated["opened_on"])
        assert "重复采集" in repeated["description"] and "XM、XB、CSRQ、JZDZ" in repeated["description"]

        # An IT project whose catalog is still a draft at acceptance.
        draft = await http.post(
            "/api/v1/catalog/resources",
            json={**demo_resource("养老机构名录"), "name": "智慧养老平台资源"},
            headers=civil,
        )
        assert draft.status_code == 201, draft.text
        project = await http.post(
            "/api/v1/catalog/projects",
            json={"name": "智慧养老服务平台", "resource_ids": [draft.json()["id"]]},
            headers=civil,
        )
        assert project.status_code == 201, project.text
        project_id = project.json()["id"]
        assert (await http.post(f"/api/v1/catalog/projects/{project_id}/approve", headers=admin)).status_code == 200
        refused = await http.post(f"/api/v1/catalog/projects/{project_id}/accept", headers=admin)
        assert refused.status_code == 409 and refused.json()["code"] == "acceptance_refused"
        assert "整改" in refused.json()["message"]
        assert (await http.get(f"/api/v1/catalog/projects/{project_id}", headers=admin)).json()["status"] == "approved"

        missing = await eventually(lambda: noticed("project_catalog_missing"), timeout=15.0)
        assert missing["department_code"] == CIVIL.code
        assert missing["reference"] == project_id
        assert missing["working_days"] == RECTIFICATION_WD
        assert missing["due_on"] == await due(missing["opened_on"])
        assert "智慧养老服务平台" in missing["description"] and "智慧养老平台资源" in missing["description"]

        # Rectified: the catalog published, the project is accepted.
        rid = draft.json()["id"]
        assert (await http.post(f"/api/v1/catalog/resources/{rid}/submit", headers=civil)).status_code == 200
        assert (await http.post(f"/api/v1/catalog/resources/{rid}/publish", headers=admin)).status_code == 200
        accepted = await http.post(f"/api/v1/catalog/projects/{project_id}/accept", headers=admin)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        assert len(await catalog_events(catalog, "catalog.project.catalog_missing")) == 1
