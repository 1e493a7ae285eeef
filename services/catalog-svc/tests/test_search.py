"""Search and the published views: Chinese full text, ranking, facets, the negative list, the open catalog."""

from __future__ import annotations

from catalog_helpers import CIVIL, PSB, SAMR, resource_body

API = "/api/v1/catalog"


def _items(*labels: str) -> list[dict]:
    return [
        {"name": f"F{i}", "label": label, "data_type": "C", "length": 50, "sensitivity": "public"}
        for i, label in enumerate(labels)
    ]


CATALOG = [
    # (department, name, summary, item labels, extra fields)
    (PSB, "户籍人口统计信息", "按街道统计的人口数量。", ["街道", "人数"], {}),
    (
        PSB,
        "户籍迁移登记信息",
        "迁入迁出登记记录。",
        ["迁出地", "迁入地"],
        {"share_type": "conditional", "share_conditions": "仅限核验", "legal_basis": "《户口登记条例》"},
    ),
    (
        PSB,
        "居住证信息",
        "来本区居住人员办理居住证的记录，记载其户籍所在地；户籍地址、户籍类别随证登记，户籍变动时同步更新。",
        ["证件编号", "有效期"],
        {},
    ),
    (
        CIVIL,
        "婚姻登记信息",
        "结婚和离婚登记记录。",
        ["登记类型", "户籍所在地"],
        {
            "share_type": "not_shared",
            "legal_basis": "《婚姻登记条例》",
            "share_method_class": None,
            "share_method_type": None,
        },
    ),
    (
        SAMR,
        "企业登记信息",
        "企业设立、变更和注销登记。",
        ["企业名称", "注册资本"],
        {"open_to_public": True, "update_cycle": "realtime", "format_category": "spreadsheet"},
    ),
    (
        CIVIL,
        "养老机构名录",
        "养老机构名称和床位。",
        ["机构名称", "床位数"],
        {"open_to_public": True, "update_cycle": "quarterly"},
    ),
]


async def _publish_all(c) -> dict[str, str]:
    ids = {}
    for dept, name, summary, labels, extra in CATALOG:
        headers = c.dept_admin(dept)
        body = resource_body(dept, name=name, summary=summary, data_items=_items(*labels), **extra)
        created = await c.http.post(f"{API}/resources", json=body, headers=headers)
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        await c.http.post(f"{API}/resources/{rid}/submit", headers=headers)
        assert (await c.http.post(f"{API}/resources/{rid}/publish", headers=c.platform_admin())).status_code == 200
        ids[name] = rid
    # A draft is never found.
    await c.http.post(f"{API}/resources", json=resource_body(PSB, name="户籍草稿信息"), headers=c.dept_admin(PSB))
    return ids


async def _republish(c, withdrawn_id: str, dept: str) -> None:
    """Put a withdrawn resource's content back as a new published resource."""
    old = (await c.http.get(f"{API}/resources/{withdrawn_id}/versions/1", headers=c.dept_admin(dept))).json()
    headers = c.dept_admin(dept)
    rid = (await c.http.post(f"{API}/resources", json=old["content"], headers=headers)).json()["id"]
    await c.http.post(f"{API}/resources/{rid}/submit", headers=headers)
    assert (await c.http.post(f"{API}/resources/{rid}/publish", headers=c.platform_admin())).status_code == 200


async def test_search_finds_hukou_ranks_name_hits_first_and_counts_facets(catalog) -> None:
    async with catalog() as c:
        await _publish_all(c)
        reader = c.user(["dept_system"], department=SAMR)

        resp = await c.http.get(f"{API}/search", params={"q": "户籍人口"}, headers=reader)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        names = [i["name"] for i in body["items"]]
        # Every resource about 户籍 is found — by name, by summary, by a data item's label — and no draft.
        assert set(names) == {"户籍人口统计信息", "户籍迁移登记信息", "居住证信息", "婚姻登记信息"}
        # Name hits first (the one matching both words on top), then the summary hit, then the label hit,
        # although the summary mentions 户籍 three times.
        assert names == ["户籍人口统计信息", "户籍迁移登记信息", "居住证信息", "婚姻登记信息"]
        assert body["total"] == 4

        facets = {name: {e["value"]: e["count"] for e in entries} for name, entries in body["facets"].items()}
        assert facets["share_type"] == {"unconditional": 2, "conditional": 1, "not_shared": 1}
        assert facets["provider_code"] == {PSB: 3, CIVIL: 1}
        assert facets["resource_class"] == {"departmental": 4}
        assert facets["open_to_public"] == {False: 4}
        labels = {e["value"]: e["label"] for e in body["facets"]["share_type"]}
        assert labels["not_shared"] == "不予共享"

        # A one-word search (served from the postings) ranks and counts the same way, and follows changes.
        one = (await c.http.get(f"{API}/search", params={"q": "户籍"}, headers=reader)).json()
        assert [i["name_hit"] for i in one["items"]] == [True, True, False, False]
        assert set(i["name"] for i in one["items"][:2]) == {"户籍人口统计信息", "户籍迁移登记信息"}
        assert [i["name"] for i in one["items"][2:]] == ["居住证信息", "婚姻登记信息"]
        counts = {e["value"]: e["count"] for e in one["facets"]["share_type"]}
        assert (one["total"], counts) == (4, {"unconditional": 2, "conditional": 1, "not_shared": 1})
        marriage = one["items"][3]["id"]
        await c.http.post(f"{API}/resources/{marriage}/withdraw", json={"reason": "测试"}, headers=c.platform_admin())
        after = (await c.http.get(f"{API}/search", params={"q": "户籍"}, headers=reader)).json()
        assert after["total"] == 3 and marriage not in {i["id"] for i in after["items"]}
        await _republish(c, marriage, CIVIL)

        # Filters narrow the results and the counts together.
        narrowed = (
            await c.http.get(f"{API}/search", params={"q": "户籍人口", "provider_code": PSB}, headers=reader)
        ).json()
        assert narrowed["total"] == 3
        assert {e["value"]: e["count"] for e in narrowed["facets"]["share_type"]} == {
            "unconditional": 2,
            "conditional": 1,
        }

        everything = (await c.http.get(f"{API}/search", headers=reader)).json()
        facets = {name: {e["value"]: e["count"] for e in entries} for name, entries in everything["facets"].items()}
        assert everything["total"] == 6
        assert facets["provider_code"] == {PSB: 3, CIVIL: 2, SAMR: 1}
        assert facets["open_to_public"] == {True: 2, False: 4}
        assert facets["update_cycle"] == {"daily": 4, "realtime": 1, "quarterly": 1}
        assert facets["format_category"] == {"database": 5, "spreadsheet": 1}
        assert facets["share_method_type"] == {"interface": 5, None: 1}

        # Sorting and pagination: a page of two, the total of all.
        page = (
            await c.http.get(f"{API}/search", params={"sort": "name", "limit": 2, "offset": 2}, headers=reader)
        ).json()
        all_names = sorted(n for _, n, *_ in CATALOG)
        assert [i["name"] for i in page["items"]] == all_names[2:4]
        assert (page["total"], page["limit"], page["offset"]) == (6, 2, 2)

        assert (await c.http.get(f"{API}/search", params={"q": "户籍"})).status_code == 401


async def test_negative_list_open_catalog_and_department_views(catalog) -> None:
    async with catalog() as c:
        ids = await _publish_all(c)
        reader = c.user(["dept_system"], department=SAMR)

        negative = (await c.http.get(f"{API}/negative-list", headers=reader)).json()
        assert {(i["name"], i["share_type"]) for i in negative["items"]} == {
            ("户籍迁移登记信息", "conditional"),
            ("婚姻登记信息", "not_shared"),
        }
        by_name = {i["name"]: i for i in negative["items"]}
        assert by_name["户籍迁移登记信息"]["share_conditions"] == "仅限核验"
        assert by_name["婚姻登记信息"]["legal_basis"] == "《婚姻登记条例》"
        assert negative["total"] == 2
        searched = (await c.http.get(f"{API}/negative-list", params={"q": "户籍"}, headers=reader)).json()
        assert [i["name"] for i in searched["items"]] == ["户籍迁移登记信息", "婚姻登记信息"]  # by code
        assert searched["total"] == 2

        # The open catalog needs no login and lists only what is open to the public.
        opened = await c.http.get(f"{API}/open")
        assert opened.status_code == 200
        assert {i["name"] for i in opened.json()["items"]} == {"企业登记信息", "养老机构名录"}
        found = (await c.http.get(f"{API}/open", params={"q": "养老"})).json()
        assert [i["name"] for i in found["items"]] == ["养老机构名录"]
        detail = await c.http.get(f"{API}/open/{ids['养老机构名录']}")
        assert detail.status_code == 200 and "legal_basis" not in detail.json()
        assert (await c.http.get(f"{API}/open/{ids['婚姻登记信息']}")).status_code == 404

        # The jurisdiction catalog holds every published resource; a department's own list adds its drafts.
        catalog_view = (await c.http.get(f"{API}/resources", params={"limit": 4}, headers=reader)).json()
        assert catalog_view["total"] == 6 and len(catalog_view["items"]) == 4
        own = (await c.http.get(f"{API}/departments/{PSB}/resources", headers=c.dept_admin(PSB))).json()
        assert own["total"] == 4 and "户籍草稿信息" in {i["name"] for i in own["items"]}
        seen_by_other = (await c.http.get(f"{API}/departments/{PSB}/resources", headers=reader)).json()
        assert seen_by_other["total"] == 3 and "obligations" not in seen_by_other
