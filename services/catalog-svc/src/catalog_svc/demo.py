"""Demo catalog for `govshare up --demo`: a realistic district catalog, published through the public API.

Owns: the demo departments (with valid unified social credit codes), their resources — base ones such as
人口基本信息 and 法人单位基本信息, thematic and departmental ones, of every share type — and `seed`, which
creates, submits and publishes them like any department and the platform office would. `seed` may be run
again: what is already published is left alone and an unfinished resource is taken up where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from govshare_common.identifiers import uscc_check_char

API = "/api/v1/catalog"
PLATFORM_ADMIN = "platform_admin"  # the key of the platform office's token in `seed`'s tokens


@dataclass(frozen=True)
class DemoDepartment:
    code: str  # unified social credit code (机关: 11 + 320404 钟楼区 + organisation code + check)
    name: str
    short: str


def _uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


PSB = DemoDepartment(_uscc("11320404MB1234501"), "常州市公安局钟楼分局", "公安局")
SAMR = DemoDepartment(_uscc("11320404MB1234502"), "常州市钟楼区市场监督管理局", "市场监管局")
HRSS = DemoDepartment(_uscc("11320404MB1234503"), "常州市钟楼区人力资源和社会保障局", "人社局")
CIVIL = DemoDepartment(_uscc("11320404MB1234504"), "常州市钟楼区民政局", "民政局")
HEALTH = DemoDepartment(_uscc("11320404MB1234505"), "常州市钟楼区卫生健康局", "卫健局")
DEMO_DEPARTMENTS: tuple[DemoDepartment, ...] = (PSB, SAMR, HRSS, CIVIL, HEALTH)


def _item(name: str, label: str, data_type: str, length: int | None = None, **kw: Any) -> dict[str, Any]:
    return {"name": name, "label": label, "data_type": data_type, "length": length, **kw}


_PERSON: dict[str, Any] = {
    "identifier_kind": "resident_id",
    "sensitivity": "personal",
    "masking_rule": "resident_id",
}
_NAME: dict[str, Any] = {"sensitivity": "personal", "masking_rule": "name"}
_ADDRESS: dict[str, Any] = {"sensitivity": "personal", "masking_rule": "address"}
_USCC: dict[str, Any] = {"identifier_kind": "uscc", "sensitivity": "public"}
_PUBLIC: dict[str, Any] = {"sensitivity": "public"}


def _resource(dept: DemoDepartment, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "provider_code": dept.code,
        "provider_name": dept.name,
        "format_category": "database",
        "format_detail": "关系型数据库表",
        "share_type": "unconditional",
        "share_method_class": "platform",
        "share_method_type": "interface",
        "update_cycle": "daily",
        "open_to_public": False,
        "related_codes": [],
        "secrecy_reviewed": True,  # every demo entry has passed its secrecy review (asked for under Hainan)
    }
    entry = {**base, **fields}
    if not entry["open_to_public"]:
        entry["not_open_reason"] = "personal_privacy"  # why it is kept from the public (asked for under Hainan)
    return entry


# Each entry: (department, resource fields, names of the resources it relates to, resolved to codes once
# those are published).
DEMO_RESOURCES: list[tuple[DemoDepartment, dict[str, Any], list[str]]] = [
    (
        PSB,
        _resource(
            PSB,
            resource_class="base",
            category_code="01",
            category_name="人口",
            subcategory_code="001",
            subcategory_name="人口基本信息",
            name="人口基本信息",
            summary="本区户籍人口和常住人口的基本信息，包括姓名、公民身份号码、性别、民族、出生日期和户籍地址，"
            "是各部门办理业务核验身份的基础信息资源。",
            update_cycle="realtime",
            data_items=[
                _item("XM", "姓名", "C", 50, required=True, **_NAME),
                _item("GMSFHM", "公民身份号码", "C", 18, required=True, **_PERSON),
                _item("XB", "性别", "C", 1, **_PUBLIC),
                _item("MZ", "民族", "C", 2, **_PUBLIC),
                _item("CSRQ", "出生日期", "D", sensitivity="sensitive"),
                _item("HJDZ", "户籍地址", "C", 200, **_ADDRESS),
            ],
        ),
        [],
    ),
    (
        PSB,
        _resource(
            PSB,
            resource_class="departmental",
            category_code="01",
            category_name="公安",
            subcategory_code="002",
            subcategory_name="户政管理",
            name="户籍迁移登记信息",
            summary="户口迁入、迁出登记记录，含迁移原因、迁出地和迁入地，用于社保转移、入学资格审核等业务协同。",
            share_type="conditional",
            share_conditions="仅限办理社会保险关系转移、义务教育入学资格审核时按人查询核验，不得批量下载。",
            legal_basis="《中华人民共和国户口登记条例》；《国务院关于推进户籍制度改革的意见》(国发〔2014〕25号)",
            share_method_type="interface",
            data_items=[
                _item("GMSFHM", "公民身份号码", "C", 18, required=True, **_PERSON),
                _item("XM", "姓名", "C", 50, **_NAME),
                _item("QYLB", "迁移类别", "C", 2),
                _item("QCD", "迁出地", "C", 200),
                _item("QRD", "迁入地", "C", 200),
                _item("QYRQ", "迁移日期", "D"),
            ],
        ),
        ["人口基本信息"],
    ),
    (
        PSB,
        _resource(
            PSB,
            resource_class="departmental",
            category_code="01",
            category_name="公安",
            subcategory_code="003",
            subcategory_name="案件管理",
            name="刑事案件侦办信息",
            summary="刑事案件立案、侦查和移送审查起诉过程中形成的案件信息。",
            share_type="not_shared",
            legal_basis="《中华人民共和国刑事诉讼法》第一百五十二条；《公安机关办理刑事案件程序规定》",
            share_method_class=None,
            share_method_type=None,
            update_cycle="irregular",
            data_items=[
                _item("AJBH", "案件编号", "C", 30, required=True),
                _item("AJMC", "案件名称", "C", 200),
                _item("LARQ", "立案日期", "D"),
            ],
        ),
        [],
    ),
    (
        SAMR,
        _resource(
            SAMR,
            resource_class="base",
            category_code="02",
            category_name="法人单位",
            subcategory_code="001",
            subcategory_name="法人单位基本信息",
            name="法人单位基本信息",
            summary="在本区登记的企业、个体工商户和农民专业合作社的登记信息，含统一社会信用代码、名称、"
            "法定代表人、住所、成立日期和经营范围。",
            update_cycle="realtime",
            open_to_public=True,
            open_conditions="无条件开放；法定代表人姓名脱敏后开放。",
            data_items=[
                _item("TYSHXYDM", "统一社会信用代码", "C", 18, required=True, **_USCC),
                _item("QYMC", "企业名称", "C", 200, required=True, **_PUBLIC),
                _item("FDDBR", "法定代表人", "C", 50, **_NAME),
                _item("ZS", "住所", "C", 200, **_PUBLIC),
                _item("CLRQ", "成立日期", "D", **_PUBLIC),
                _item("JYFW", "经营范围", "M", **_PUBLIC),
            ],
        ),
        [],
    ),
    (
        SAMR,
        _resource(
            SAMR,
            resource_class="thematic",
            category_code="04",
            category_name="食品药品安全",
            subcategory_code="001",
            subcategory_name="食品经营许可",
            name="食品经营许可证信息",
            summary="食品经营许可证的核发、变更和注销信息，供市场监管、卫生健康和社区治理协同监管使用。",
            format_category="spreadsheet",
            format_detail="xlsx",
            share_method_type="file",
            update_cycle="weekly",
            open_to_public=True,
            open_conditions="向社会开放许可证编号、经营者名称和有效期。",
            data_items=[
                _item("XKZBH", "许可证编号", "C", 30, required=True, **_PUBLIC),
                _item("JYZMC", "经营者名称", "C", 200, **_PUBLIC),
                _item("TYSHXYDM", "统一社会信用代码", "C", 18, **_USCC),
                _item("YXQZ", "有效期至", "D", **_PUBLIC),
            ],
        ),
        ["法人单位基本信息"],
    ),
    (
        SAMR,
        _resource(
            SAMR,
            resource_class="thematic",
            category_code="08",
            category_name="信用体系",
            subcategory_code="001",
            subcategory_name="行政处罚",
            name="市场监管行政处罚信息",
            summary="市场监管领域作出的行政处罚决定，含处罚对象、违法行为、处罚依据和处罚结果。",
            share_type="conditional",
            share_conditions="用于信用联合惩戒和行政审批核查，使用部门须说明办理事项。",
            legal_basis="《中华人民共和国行政处罚法》；《企业信息公示暂行条例》",
            data_items=[
                _item("CFJDSWH", "处罚决定书文号", "C", 50, required=True),
                _item("TYSHXYDM", "统一社会信用代码", "C", 18, **_USCC),
                _item("WFXW", "违法行为", "M"),
                _item("CFJG", "处罚结果", "M"),
                _item("CFRQ", "处罚日期", "D"),
            ],
        ),
        ["法人单位基本信息"],
    ),
    (
        HRSS,
        _resource(
            HRSS,
            resource_class="thematic",
            category_code="03",
            category_name="社会保障",
            subcategory_code="001",
            subcategory_name="社会保险",
            name="社会保险参保缴费信息",
            summary="职工养老、医疗、失业、工伤保险的参保状态和缴费记录，用于人才引进、住房保障和救助审核。",
            share_type="conditional",
            share_conditions="按人核验参保状态和缴费月数，不提供缴费基数明细。",
            legal_basis="《中华人民共和国社会保险法》第八十一条",
            update_cycle="monthly",
            data_items=[
                _item("GMSFHM", "公民身份号码", "C", 18, required=True, **_PERSON),
                _item("XM", "姓名", "C", 50, **_NAME),
                _item("XZLX", "险种类型", "C", 2),
                _item("CBZT", "参保状态", "C", 1),
                _item("LJJFYS", "累计缴费月数", "I"),
            ],
        ),
        ["人口基本信息"],
    ),
    (
        HRSS,
        _resource(
            HRSS,
            resource_class="departmental",
            category_code="02",
            category_name="就业",
            subcategory_code="001",
            subcategory_name="就业登记",
            name="就业失业登记信息",
            summary="劳动者就业登记、失业登记和就业困难人员认定信息。",
            share_type="unconditional",
            update_cycle="weekly",
            data_items=[
                _item("GMSFHM", "公民身份号码", "C", 18, required=True, **_PERSON),
                _item("DJLB", "登记类别", "C", 2),
                _item("DJRQ", "登记日期", "D"),
                _item("JYDW", "就业单位", "C", 200),
            ],
        ),
        [],
    ),
    (
        CIVIL,
        _resource(
            CIVIL,
            resource_class="thematic",
            category_code="03",
            category_name="社会保障",
            subcategory_code="002",
            subcategory_name="社会救助",
            name="最低生活保障对象信息",
            summary="城乡最低生活保障对象及其家庭成员、保障金额和保障起止时间，用于医疗救助、教育资助和住房保障。",
            share_type="conditional",
            share_conditions="仅限社会救助、医疗救助和教育资助经办机构核对救助对象身份。",
            legal_basis="《社会救助暂行办法》(国务院令第649号)",
            update_cycle="monthly",
            data_items=[
                _item("GMSFHM", "公民身份号码", "C", 18, required=True, **_PERSON),
                _item("XM", "姓名", "C", 50, **_NAME),
                _item("JTRKS", "家庭人口数", "I"),
                _item("BZJE", "月保障金额", "Y", 10),
                _item("BZKSRQ", "保障开始日期", "D"),
            ],
        ),
        ["人口基本信息", "社会保险参保缴费信息"],
    ),
    (
        CIVIL,
        _resource(
            CIVIL,
            resource_class="departmental",
            category_code="03",
            category_name="民政",
            subcategory_code="001",
            subcategory_name="婚姻登记",
            name="婚姻登记信息",
            summary="结婚登记、离婚登记和补领婚姻登记证记录。",
            share_type="conditional",
            share_conditions="仅限不动产登记、公积金提取和户籍办理中核验婚姻状况。",
            legal_basis="《婚姻登记条例》",
            data_items=[
                _item("NFGMSFHM", "男方公民身份号码", "C", 18, **_PERSON),
                _item("NVFGMSFHM", "女方公民身份号码", "C", 18, **_PERSON),
                _item("DJLX", "登记类型", "C", 2),
                _item("DJRQ", "登记日期", "D"),
            ],
        ),
        ["人口基本信息"],
    ),
    (
        CIVIL,
        _resource(
            CIVIL,
            resource_class="departmental",
            category_code="03",
            category_name="民政",
            subcategory_code="002",
            subcategory_name="养老服务",
            name="养老机构名录",
            summary="本区养老机构的名称、地址、床位数和联系电话。",
            format_category="spreadsheet",
            format_detail="xlsx",
            share_method_type="file",
            update_cycle="quarterly",
            open_to_public=True,
            open_conditions="无条件开放。",
            data_items=[
                _item("JGMC", "机构名称", "C", 200, required=True, **_PUBLIC),
                _item("DZ", "地址", "C", 200, **_PUBLIC),
                _item("CWS", "床位数", "I", **_PUBLIC),
                _item("LXDH", "联系电话", "C", 20, **_PUBLIC),
            ],
        ),
        [],
    ),
    (
        HEALTH,
        _resource(
            HEALTH,
            resource_class="base",
            category_code="05",
            category_name="电子证照",
            subcategory_code="001",
            subcategory_name="出生医学证明",
            name="出生医学证明电子证照",
            summary="新生儿出生医学证明电子证照，用于户口登记、医保参保和预防接种建档。",
            format_category="electronic_file",
            format_detail="OFD",
            share_method_type="interface",
            data_items=[
                _item("ZMBH", "出生医学证明编号", "C", 20, required=True),
                _item("XSEXM", "新生儿姓名", "C", 50, **_NAME),
                _item("CSRQ", "出生日期", "D"),
                _item("MQGMSFHM", "母亲公民身份号码", "C", 18, **_PERSON),
                _item("ZZWJ", "证照文件", "B"),
            ],
        ),
        ["人口基本信息"],
    ),
]


async def seed(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """Publish the demo catalog: tokens["platform_admin"] reviews, tokens[department code] (a dept_admin of
    that department) compiles. `http` points at the gateway (or the catalog service itself)."""
    admin = {"Authorization": f"Bearer {tokens[PLATFORM_ADMIN]}"}
    codes: dict[str, str] = {}
    existing: dict[str, dict[str, dict[str, Any]]] = {}
    for dept, fields, related in DEMO_RESOURCES:
        headers = {"Authorization": f"Bearer {tokens[dept.code]}"}
        if dept.code not in existing:
            existing[dept.code] = await _department_resources(http, dept.code, headers)
        found = existing[dept.code].get(fields["name"])
        if found is not None and found["status"] == "published" and found["pending_status"] is None:
            codes[fields["name"]] = found["code"]
            continue
        body = {**fields, "related_codes": [codes[n] for n in related]}
        if found is None:
            resp = await http.post(f"{API}/resources", json=body, headers=headers)
            _ok(resp, f"create {fields['name']}")
            resource_id = resp.json()["id"]
            pending_status: str | None = "draft"
        else:
            resource_id, pending_status = found["id"], found["pending_status"]
        if pending_status in ("draft", "returned"):
            _ok(await http.put(f"{API}/resources/{resource_id}/draft", json=body, headers=headers), "save")
            _ok(
                await http.post(f"{API}/resources/{resource_id}/submit", headers=headers),
                f"submit {fields['name']}",
            )
            pending_status = "submitted"
        if pending_status == "submitted":
            resp = await http.post(
                f"{API}/resources/{resource_id}/publish", json={"comment": "演示数据"}, headers=admin
            )
            _ok(resp, f"publish {fields['name']}")
            codes[fields["name"]] = resp.json()["code"]
        elif found is not None:
            codes[fields["name"]] = found["code"]


async def _department_resources(
    http: httpx.AsyncClient, department: str, headers: dict[str, str]
) -> dict[str, dict[str, Any]]:
    resp = await http.get(f"{API}/departments/{department}/resources", params={"limit": 200}, headers=headers)
    _ok(resp, f"list {department}")
    return {r["name"]: r for r in resp.json()["items"] if r["status"] != "withdrawn"}


def _ok(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise RuntimeError(f"demo catalog: {what} failed with {resp.status_code}: {resp.text[:500]}")
