"""Demo share requests for `govshare up --demo`: the catalog demo's departments applying for each other's
conditional and not-shared resources, left in every state a reviewer meets, through the public API.

`seed(http, tokens)` follows catalog_svc.demo.seed's convention: `http` is a client on the gateway, `tokens`
holds a dept_admin token per department code and the platform office's token under "platform_admin". Each demo
request is recognised by its business matter, so running `seed` again adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/v1/requests"
PLATFORM_ADMIN = "platform_admin"
MARK = "【演示】"


@dataclass(frozen=True)
class DemoRequest:
    consumer: str  # department code (the catalog demo's)
    resource: str  # resource name in the catalog demo
    items: list[str]
    purposes: list[str]
    matter: str
    then: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (who, action, body)


def _plan() -> list[DemoRequest]:
    # Imported here, not at module level: services never import each other, and the demo runs only where the
    # whole stack is installed (the lead's demo step). The codes are plain data the catalog demo publishes.
    from govshare_common.identifiers import uscc_check_char

    def code(body17: str) -> str:
        return body17 + uscc_check_char(body17)

    psb, samr, hrss, civil, health = (code(f"11320404MB123450{i}") for i in range(1, 6))
    return [
        DemoRequest(
            hrss,
            "户籍迁移登记信息",
            ["GMSFHM", "XM", "QCD", "QRD"],
            ["business_collaboration"],
            "社会保险关系跨区转移接续时核验户籍迁移情况",
            then=[(psb, "approve", {"items": ["GMSFHM", "XM", "QRD"], "conditions": ["仅限社保转移经办时按人查询"]})],
        ),
        DemoRequest(
            health,
            "婚姻登记信息",
            ["NFGMSFHM", "NVFGMSFHM", "DJLX", "DJRQ"],
            ["work_reference"],
            "出生医学证明办理中了解父母婚姻状况",
            then=[(civil, "reject", {"reason": "出生医学证明办理不以婚姻状况为条件，超出共享条件规定的使用范围。"})],
        ),
        DemoRequest(
            samr,
            "最低生活保障对象信息",
            ["GMSFHM", "XM", "BZJE"],
            ["data_verification"],
            "个体工商户登记减免费用时核验低保对象身份",
            then=[
                (civil, "reject", {"reason": "市场监管登记不属于社会救助经办，不符合共享条件。"}),
                (samr, "escalate", {"reason": "减免登记费用政策明确以低保身份为条件，申请协商。"}),
            ],
        ),
        DemoRequest(
            health,
            "社会保险参保缴费信息",
            ["GMSFHM", "XM", "CBZT"],
            ["administrative_basis"],
            "家庭医生签约服务中核验居民参保状态",
            then=[(hrss, "request-info", {"question": "请补充家庭医生签约服务的政策文件及经办人员名单。"})],
        ),
        DemoRequest(
            civil,
            "户籍迁移登记信息",
            ["GMSFHM", "XM", "QYRQ"],
            ["data_verification"],
            "婚姻登记时核验当事人户籍迁移情况",
        ),
        DemoRequest(
            samr,
            "户籍迁移登记信息",
            ["GMSFHM", "XM"],
            ["other"],
            "企业登记住所核查（已改为现场核查）",
            then=[(samr, "withdraw", {})],
        ),
        DemoRequest(
            hrss,
            "刑事案件侦办信息",
            ["AJBH", "AJMC"],
            ["administrative_basis"],
            "工伤认定中核实涉案情况",
        ),
    ]


async def seed(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """Create the demo requests that are missing and take each to its demo state."""
    codes = await _resource_codes(http, tokens[PLATFORM_ADMIN])
    for demo in _plan():
        headers = {"Authorization": f"Bearer {tokens[demo.consumer]}"}
        code = codes.get(demo.resource)
        if code is None:
            raise RuntimeError(f"demo requests: the catalog demo resource {demo.resource} is not published")
        if await _exists(http, headers, code, MARK + demo.matter):
            continue
        body: dict[str, Any] = {
            "resource_code": code,
            "items": demo.items,
            "purposes": demo.purposes,
            "scope": "本部门业务经办科室经办人员（不超过 5 人）",
            "security_measures": "通过电子政务外网访问，账号实名、操作留痕，数据不落地、不外传",
            "business_matter": MARK + demo.matter,
            "policy_basis": "《政务信息资源共享管理暂行办法》(国发〔2016〕51号)",
        }
        if "other" in demo.purposes:
            body["purpose_other"] = "企业住所真实性核查"
        resp = await http.post(API, json=body, headers=headers)
        _ok(resp, f"submit {demo.matter}")
        request_id = resp.json()["id"]
        for who, action, action_body in demo.then:
            resp = await http.post(
                f"{API}/{request_id}/{action}", json=action_body, headers={"Authorization": f"Bearer {tokens[who]}"}
            )
            _ok(resp, f"{action} {demo.matter}")


async def _resource_codes(http: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    resp = await http.get(
        "/api/v1/catalog/resources", params={"limit": 200}, headers={"Authorization": f"Bearer {admin_token}"}
    )
    _ok(resp, "list the catalog")
    return {i["name"]: i["code"] for i in resp.json()["items"]}


async def _exists(http: httpx.AsyncClient, headers: dict[str, str], code: str, matter: str) -> bool:
    resp = await http.get(API, params={"role": "consumer", "resource_code": code, "limit": 200}, headers=headers)
    _ok(resp, "list requests")
    return any(i["business_matter"] == matter for i in resp.json()["items"])


def _ok(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise RuntimeError(f"demo requests: {what} failed with {resp.status_code}: {resp.text[:500]}")
