"""Shared by the exchange tests: departments, people and companies with valid check digits, resource bodies,
grant payloads per docs/event-contracts.md, and batch bodies."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from govshare_common.identifiers import resident_id_check_char, uscc_check_char

API = "/api/v1/exchange"


def path(code: str, rest: str) -> str:
    return f"{API}/resources/{quote(code, safe='')}/{rest}"


def uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


PSB = uscc("11320404MB0000001")  # 公安分局: provides population data
HRSS = uscc("11320404MB0000003")  # 人社局: consumer, and a declared source of one population item
CIVIL = uscc("11320404MB0000004")  # 民政局: consumer
NAMES = {PSB: "常州市公安局钟楼分局", HRSS: "常州市钟楼区人力资源和社会保障局", CIVIL: "常州市钟楼区民政局"}

ZHANG = "11010519491231002X"  # the standard's valid example
LI = resident_id("32040419800101001")
WANG = resident_id("32040419900215123")


def item(name: str, label: str, data_type: str, length: int | None = None, **kw: Any) -> dict[str, Any]:
    return {"name": name, "label": label, "data_type": data_type, "length": length, **kw}


PEOPLE_ITEMS = [
    item(
        "GMSFHM",
        "公民身份号码",
        "C",
        18,
        required=True,
        identifier_kind="resident_id",
        sensitivity="personal",
        masking_rule="resident_id",
    ),
    item("XM", "姓名", "C", 50, required=True, sensitivity="personal", masking_rule="name"),
    item("LXDH", "联系电话", "C", 20, sensitivity="personal", masking_rule="phone"),
    item("HJDZ", "户籍地址", "C", 200, sensitivity="personal", masking_rule="address"),
    item("CSRQ", "出生日期", "D"),
    item("MZ", "民族", "C", 2, sensitivity="public"),
]


def resource_body(**overrides: Any) -> dict[str, Any]:
    """A conditional departmental people resource of PSB, hosted as records."""
    body: dict[str, Any] = {
        "resource_class": "departmental",
        "category_code": "01",
        "category_name": "公安",
        "subcategory_code": "002",
        "subcategory_name": "户政管理",
        "name": "户籍人口登记信息",
        "summary": "户籍人口的登记信息，含姓名、公民身份号码、联系电话和户籍地址。",
        "provider_code": PSB,
        "provider_name": NAMES[PSB],
        "format_category": "database",
        "format_detail": "关系型数据库表",
        "data_items": PEOPLE_ITEMS,
        "share_type": "conditional",
        "share_conditions": "仅限办理社会保障业务时按人核验。",
        "share_method_class": "platform",
        "share_method_type": "interface",
        "update_cycle": "daily",
    }
    body = copy.deepcopy(body)
    body.update(overrides)
    return body


def base_body(**overrides: Any) -> dict[str, Any]:
    """The base population resource (unconditional, as R1.3 requires)."""
    return resource_body(
        resource_class="base",
        category_name="人口",
        subcategory_code="001",
        subcategory_name="人口基本信息",
        name="人口基本信息",
        share_type="unconditional",
        share_conditions=None,
        **overrides,
    )


def person(gmsfhm: str, xm: str, **extra: Any) -> dict[str, Any]:
    return {
        "GMSFHM": gmsfhm,
        "XM": xm,
        "LXDH": "13800138000",
        "HJDZ": "江苏省常州市钟楼区南大街1号",
        "CSRQ": f"{gmsfhm[6:10]}-{gmsfhm[10:12]}-{gmsfhm[12:14]}",
        "MZ": "01",
        **extra,
    }


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


# --- request-svc's grant events, exactly as docs/event-contracts.md fixes them ---------------------------------


class GrantIssued(BaseModel):
    grant_id: str
    request_id: str | None
    consumer_code: str
    provider_code: str
    resource_id: str | None
    resource_code: str
    items: list[str]
    unmasked_items: list[str]
    purposes: list[str]
    scope: str
    conditions: list[str]
    valid_from: datetime | None
    valid_until: datetime | None


class GrantRevoked(BaseModel):
    grant_id: str
    consumer_code: str
    resource_code: str
    reason: str
    revoked_by: str
    actor: str


class GrantExpired(BaseModel):
    grant_id: str
    consumer_code: str
    resource_code: str
    expired_at: datetime


def error_shape(resp: Any) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"code", "message", "details", "trace_id"}, body
    return body
