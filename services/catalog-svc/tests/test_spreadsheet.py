"""Catalog spreadsheets: a department's .xlsx becomes drafts, or nothing with every error located; export uses
the same layout, so an exported catalog uploads again unchanged."""

from __future__ import annotations

import io
from typing import Any

from catalog_helpers import NAMES, PSB
from openpyxl import Workbook, load_workbook

API = "/api/v1/catalog"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

HEADER = [
    "序号",
    "类",
    "项编码",
    "项名称",
    "目编码",
    "目名称",
    "信息资源名称",
    "信息资源摘要",
    "信息资源提供方",
    "提供方代码",
    "信息资源格式分类",
    "信息资源格式类型",
    "信息项名称",
    "字段名",
    "数据类型",
    "数据长度",
    "是否必填",
    "标识类型",
    "敏感级别",
    "脱敏规则",
    "共享类型",
    "共享条件",
    "法律法规或政策依据",
    "共享方式分类",
    "共享方式类型",
    "是否向社会开放",
    "开放条件",
    "更新周期",
    "关联资源代码",
]


def _resource_cells(name: str, **kw: Any) -> dict[str, Any]:
    cells = {
        "类": "部门信息资源",
        "项编码": "01",
        "项名称": "公安",
        "目编码": 2,
        "目名称": "户政管理",
        "信息资源名称": name,
        "信息资源摘要": f"{name}的摘要",
        "信息资源提供方": NAMES[PSB],
        "提供方代码": PSB,
        "信息资源格式分类": "数据库",
        "信息资源格式类型": "MySQL",
        "共享类型": "无条件共享",
        "共享方式分类": "共享平台方式",
        "共享方式类型": "接口",
        "是否向社会开放": "否",
        "更新周期": "每日",
    }
    cells.update(kw)
    return cells


def _item(label: str, name: str, data_type: str, length: Any = None, **kw: Any) -> dict[str, Any]:
    return {
        "信息项名称": label,
        "字段名": name,
        "数据类型": data_type,
        "数据长度": length,
        "是否必填": "否",
        "标识类型": "无",
        "敏感级别": "内部",
        "脱敏规则": "不脱敏",
        **kw,
    }


def workbook(
    resources: list[tuple[dict[str, Any], list[dict[str, Any]]]], *, merge: bool, header: list[str] = HEADER
) -> bytes:
    """The guide's layout: one row per data item; a resource's own cells merged down its rows, or repeated."""
    wb = Workbook()
    ws = wb.active
    ws.title = "信息资源目录"
    ws.append(header)
    row = 2
    for serial, (cells, items) in enumerate(resources, start=1):
        first = row
        for i, item in enumerate(items):
            values = {**item, "序号": serial}
            if i == 0 or not merge:
                values.update(cells)
            ws.append([values.get(h) for h in header])
            row += 1
        if merge and len(items) > 1:
            for col, name in enumerate(header, start=1):
                if name in cells:
                    ws.merge_cells(start_row=first, start_column=col, end_row=row - 1, end_column=col)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def upload(c, data: bytes, headers: dict[str, str], name: str = "目录.xlsx"):
    return c.http.post(f"{API}/import", files={"file": (name, data, XLSX)}, headers=headers)


VALID = [
    (
        _resource_cells(
            "户籍迁移登记信息",
            共享类型="有条件共享",
            共享条件="仅限核验",
            法律法规或政策依据="《户口登记条例》",
        ),
        [
            _item(
                "公民身份号码",
                "GMSFHM",
                "C 字符型",
                18,
                是否必填="是",
                标识类型="居民身份证号码",
                敏感级别="个人信息",
                脱敏规则="证件号码脱敏",
            ),
            _item("迁出地", "QCD", "字符型", 200),
            _item("迁移日期", "QYRQ", "D"),
        ],
    ),
    (
        _resource_cells("暂住登记信息", 更新周期="每月"),
        [_item("姓名", "XM", "C", 50), _item("暂住地址", "ZZDZ", "C", 200)],
    ),
]


async def test_a_valid_sheet_becomes_drafts(catalog) -> None:
    async with catalog() as c:
        dept = c.dept_admin(PSB)
        resp = await upload(c, workbook(VALID, merge=True), dept)
        assert resp.status_code == 201, resp.text
        assert resp.json()["imported"] == 2
        listed = (await c.http.get(f"{API}/departments/{PSB}/resources", headers=dept)).json()
        assert listed["total"] == 2
        assert {(i["name"], i["status"], i["pending_status"]) for i in listed["items"]} == {
            ("户籍迁移登记信息", "draft", "draft"),
            ("暂住登记信息", "draft", "draft"),
        }
        first = next(i for i in resp.json()["resources"] if i["name"] == "户籍迁移登记信息")
        content = (await c.http.get(f"{API}/resources/{first['id']}", headers=dept)).json()["pending"]["content"]
        assert content["share_type"] == "conditional" and content["share_conditions"] == "仅限核验"
        assert content["subcategory_code"] == "002" and content["format_category"] == "database"
        assert [(i["name"], i["data_type"], i["length"]) for i in content["data_items"]] == [
            ("GMSFHM", "C", 18),
            ("QCD", "C", 200),
            ("QYRQ", "D", None),
        ]
        assert content["data_items"][0]["identifier_kind"] == "resident_id"
        assert content["data_items"][0]["masking_rule"] == "resident_id"
        # Drafts: nothing is published until each one is submitted and reviewed.
        assert (await c.http.get(f"{API}/resources", headers=dept)).json()["total"] == 0


async def test_the_cross_level_column_marks_a_resource_shared_across_levels_and_blank_means_not(catalog) -> None:
    async with catalog() as c:
        dept = c.dept_admin(PSB)
        marked = ({**VALID[0][0], "是否跨层级共享": "是"}, VALID[0][1])
        sheet = workbook([marked, VALID[1]], merge=True, header=[*HEADER, "是否跨层级共享"])
        resp = await upload(c, sheet, dept)
        assert resp.status_code == 201, resp.text
        marks = {}
        for made in resp.json()["resources"]:
            r = await c.http.get(f"{API}/resources/{made['id']}", headers=dept)
            marks[made["name"]] = r.json()["pending"]["content"]["cross_level"]
        assert marks == {"户籍迁移登记信息": True, "暂住登记信息": False}


async def test_a_sheet_with_three_bad_rows_reports_all_three_and_imports_nothing(catalog) -> None:
    bad = [
        (
            VALID[0][0],
            [VALID[0][1][0], _item("迁出地", "QCD", "X", 200), VALID[0][1][2]],  # row 3: unknown data type
        ),
        (
            _resource_cells("暂住登记信息"),
            [
                _item("姓名", "XM", "C", "五十"),
                _item("暂住地址", "ZZDZ", "C", 200),
            ],  # row 5: length not a number
        ),
        (
            # row 7: not_shared without a legal basis (a resource rule, placed on the resource's first row)
            _resource_cells("涉案人员信息", 共享类型="不予共享", 共享方式分类=None, 共享方式类型=None),
            [_item("案件编号", "AJBH", "C", 30)],
        ),
    ]
    async with catalog() as c:
        before = await c.counts()
        resp = await upload(c, workbook(bad, merge=False), c.dept_admin(PSB))
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["code"] == "import_invalid"
        located = [(e["sheet"], e["row"], e["column"], e["header"]) for e in body["details"]["errors"]]
        col = {h: chr(ord("A") + i) for i, h in enumerate(HEADER)}
        assert located == [
            ("信息资源目录", 3, col["数据类型"], "数据类型"),
            ("信息资源目录", 5, col["数据长度"], "数据长度"),
            ("信息资源目录", 7, col["法律法规或政策依据"], "法律法规或政策依据"),
        ]
        assert "X" in body["details"]["errors"][0]["message"]
        assert await c.counts() == before


async def test_export_uses_the_upload_layout_and_round_trips(catalog) -> None:
    async with catalog() as c:
        dept, admin = c.dept_admin(PSB), c.platform_admin()
        imported = (await upload(c, workbook(VALID, merge=False), dept)).json()["resources"]
        for r in imported:
            await c.http.post(f"{API}/resources/{r['id']}/submit", headers=dept)
            assert (await c.http.post(f"{API}/resources/{r['id']}/publish", headers=admin)).status_code == 200

        resp = await c.http.get(f"{API}/export", params={"department": PSB}, headers=c.user(["dept_system"]))
        assert resp.status_code == 200 and resp.headers["content-type"] == XLSX
        ws = load_workbook(io.BytesIO(resp.content), read_only=True)["信息资源目录"]
        rows = list(ws.iter_rows(values_only=True))
        header = list(rows[0])
        assert header[:3] == ["序号", "信息资源代码", "类"] and "信息项名称" in header and "发布日期" in header
        assert len(rows) == 1 + 5  # one row per data item
        first = dict(zip(header, rows[1], strict=True))
        assert first["共享类型"] in ("有条件共享", "无条件共享") and first["类"] == "部门信息资源"
        assert first["信息资源代码"].startswith("301002/")

        # Uploading the export again changes nothing but opens a new draft version of each resource.
        again = await upload(c, resp.content, dept, name="导出.xlsx")
        assert again.status_code == 201, again.text
        assert {r["new"] for r in again.json()["resources"]} == {False}
        for r in again.json()["resources"]:
            detail = (await c.http.get(f"{API}/resources/{r['id']}", headers=dept)).json()
            assert detail["pending"]["version"] == 2 and detail["pending"]["changes"] == []
