"""Shared by the catalog tests: department codes, a valid resource body, and reading a refusal."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from govshare_common.identifiers import uscc_check_char


def uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


PSB = uscc("11320404MB0000001")  # 公安分局
SAMR = uscc("11320404MB0000002")  # 市场监管局
CIVIL = uscc("11320404MB0000003")  # 民政局
NAMES = {PSB: "常州市公安局钟楼分局", SAMR: "常州市钟楼区市场监督管理局", CIVIL: "常州市钟楼区民政局"}


def resource_body(department: str = PSB, **overrides: Any) -> dict[str, Any]:
    """A valid departmental resource of `department`; overrides replace fields."""
    body: dict[str, Any] = {
        "resource_class": "departmental",
        "category_code": "01",
        "category_name": "公安",
        "subcategory_code": "002",
        "subcategory_name": "户政管理",
        "name": "户籍迁移登记信息",
        "summary": "户口迁入、迁出登记记录，含迁移原因、迁出地和迁入地。",
        "provider_code": department,
        "provider_name": NAMES[department],
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
            {"name": "QCD", "label": "迁出地", "data_type": "C", "length": 200},
            {"name": "QYRQ", "label": "迁移日期", "data_type": "D"},
        ],
        "share_type": "unconditional",
        "share_method_class": "platform",
        "share_method_type": "interface",
        "update_cycle": "daily",
    }
    body = copy.deepcopy(body)
    body.update(overrides)
    return body


def fields_of(resp: httpx.Response) -> dict[str, str]:
    """field -> code of a refusal's field-level errors."""
    body = resp.json()
    assert set(body) == {"code", "message", "details", "trace_id"}, body
    return {f["field"]: f["code"] for f in body["details"].get("fields", [])}
