"""Shared by the request-svc tests: departments, catalog resources to publish, a valid request body, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from govshare_common.identifiers import uscc_check_char

CHINA = ZoneInfo("Asia/Shanghai")


def uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


PROVIDER = uscc("11320404MB0000101")  # 公安分局: holds the data
CONSUMER = uscc("11320404MB0000102")  # 人社局: asks for it
OTHER = uscc("11320404MB0000103")  # 民政局: neither
NAMES = {PROVIDER: "公安分局", CONSUMER: "人社局", OTHER: "民政局"}


def at(day: str, time: str = "10:00") -> datetime:
    """An instant in China time, as a UTC datetime for a FrozenClock."""
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=CHINA).astimezone(UTC)


def resource_body(share_type: str, department: str = PROVIDER, name: str = "户籍迁移登记信息") -> dict[str, Any]:
    body: dict[str, Any] = {
        "resource_class": "departmental",
        "category_code": "01",
        "category_name": "公安",
        "subcategory_code": "002",
        "subcategory_name": "户政管理",
        "name": name,
        "summary": "户口迁入、迁出登记记录。",
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
                "identifier_kind": "resident_id",
                "sensitivity": "personal",
                "masking_rule": "resident_id",
            },
            {"name": "XM", "label": "姓名", "data_type": "C", "length": 50, "sensitivity": "personal"},
            {"name": "QCD", "label": "迁出地", "data_type": "C", "length": 200},
        ],
        "share_type": share_type,
        "share_method_class": "platform",
        "share_method_type": "interface",
        "update_cycle": "daily",
        "legal_basis": "《中华人民共和国户口登记条例》",
        "secrecy_reviewed": True,  # reviewed for secrets: Hainan registers nothing without it
        "not_open_reason": "personal_privacy",  # kept from the public, and why (Hainan opens all else)
    }
    if share_type == "conditional":
        body["share_conditions"] = "仅限社保关系转移时按人核验。"
    if share_type == "not_shared":
        body["share_method_class"] = None
        body["share_method_type"] = None
    return body


def request_body(code: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resource_code": code,
        "items": ["GMSFHM", "XM"],
        "purposes": ["business_collaboration"],
        "scope": "社保经办科室经办人员",
        "security_measures": "专网访问，操作留痕，数据不落地",
        "business_matter": "社会保险关系转移接续",
    }
    body.update(overrides)
    return body


def fields_of(resp: httpx.Response) -> dict[str, str]:
    """field -> code of a refusal's field-level errors, after checking the one error shape."""
    body = resp.json()
    assert set(body) == {"code", "message", "details", "trace_id"}, body
    return {f["field"]: f["code"] for f in body["details"].get("fields", [])}
