"""The share-request rules, pure: what a request must say, who answers it at each stage, and what a grant holds.

Owns: the purpose vocabulary (R3.2), the request's states and their Chinese labels, the checks on a new
request (data items from the resource, a purpose with text for "other", a policy basis where the profile asks
for one, no request for unconditional data), the routing of not_shared data straight to the profile's first
escalation step, who decides at each step (the provider at its own review and at negotiation, the platform
office at the coordinator and leading-group steps), how far a refused request may be escalated, what an
approval may narrow, and the third-party transfer switch (Hainan Art.23). No I/O: callers load the resource,
the request and the profile and pass them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from govshare_common.errors import AppError, Conflict, Forbidden, ValidationFailed, field_error
from govshare_common.profiles import EscalationStep, Profile

STATES: dict[str, str] = {
    "submitted": "待提供部门答复",
    "info_requested": "待使用部门补充材料（计时暂停）",
    "approved": "已同意",
    "rejected": "未同意",
    "escalated": "协商协调中",
    "withdrawn": "已撤回",
    "forwarding": "转送中（跨平台申请，待资源所属平台受理）",
    "forward_refused": "资源所属平台未受理",
}
State = Literal[
    "submitted", "info_requested", "approved", "rejected", "escalated", "withdrawn", "forwarding", "forward_refused"
]
# States in which someone owes the consumer an answer (the clock runs unless it has no deadline).
AWAITING = ("submitted", "escalated")
GRANT_STATES: dict[str, str] = {"active": "有效", "revoked": "已撤销", "expired": "已到期"}
SYSTEM_ACTOR = "system"
Decider = Literal["provider", "platform_office"]


@dataclass(frozen=True)
class ResourceView:
    """The catalog projection's view of one resource."""

    code: str
    resource_id: str
    name: str
    provider_code: str
    share_type: str  # unconditional | conditional | not_shared
    status: str  # published | withdrawn
    item_names: tuple[str, ...]


@dataclass(frozen=True)
class Application:
    """What a consumer asks for; validated by `check_application`."""

    consumer_code: str
    items: Sequence[str]
    purposes: Sequence[str]
    purpose_other: str | None
    scope: str
    security_measures: str
    business_matter: str
    policy_basis: str | None
    valid_until_wanted: datetime | None
    written_application: str | None = None  # the letter a step that asks for one (Xiangyang Art.10) receives


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _invalid(problems: list[dict[str, str]]) -> ValidationFailed:
    return ValidationFailed(
        "共享申请未通过校验，请按 details 中列出的字段逐项修改。",
        "The share request did not validate; fix the fields listed in details.",
        details={"fields": problems},
    )


def check_application(resource: ResourceView | None, app: Application, profile: Profile, now: datetime) -> None:
    """Refuse a request that may not be made, with the reason a person can act on."""
    if resource is None or resource.status != "published":
        raise _invalid(
            [
                field_error(
                    "resource_code",
                    "未找到已发布的该信息资源，请核对资源代码（资源可能尚未发布或已撤销）。",
                    "No published resource has this code (not yet published, or withdrawn).",
                    code="unknown_resource",
                )
            ]
        )
    if resource.provider_code == app.consumer_code:
        raise Conflict(
            "本部门的信息资源无需申请，可直接使用。",
            "Your department provides this resource; it needs no request.",
            code="own_resource",
        )
    if resource.share_type == "unconditional":
        raise Conflict(
            "该信息资源为无条件共享，无需申请：请直接通过共享交换平台（/api/v1/exchange/resources/…）获取。",
            "This resource is shared unconditionally and needs no request: take it directly through the exchange "
            "(/api/v1/exchange/resources/...).",
            code="no_request_needed",
            details={"resource_code": resource.code, "share_type": "unconditional"},
        )
    problems: list[dict[str, str]] = []
    unknown = [i for i in app.items if i not in resource.item_names]
    if not app.items:
        problems.append(
            field_error("items", "请至少选择一个信息项。", "Choose at least one data item.", code="required")
        )
    elif unknown:
        problems.append(
            field_error(
                "items",
                "以下信息项不属于该信息资源：" + "、".join(unknown),
                "These data items are not in the resource: " + ", ".join(unknown),
                code="unknown_items",
            )
        )
    if len(set(app.items)) != len(app.items):
        problems.append(field_error("items", "信息项有重复。", "Data items are repeated.", code="duplicate_items"))
    if "other" in app.purposes and _blank(app.purpose_other):
        problems.append(
            field_error(
                "purpose_other",
                "用途为“其他”时须说明具体用途。",
                "Describe the purpose when it is 'other'.",
                code="required",
            )
        )
    for name, value, zh, en in (
        ("scope", app.scope, "请说明数据的知悉范围（哪些人员将看到数据）。", "Say who will see the data."),
        ("security_measures", app.security_measures, "请说明安全保护措施。", "Describe the security measures."),
        ("business_matter", app.business_matter, "请说明所支撑的业务事项。", "Name the business matter it serves."),
    ):
        if _blank(value):
            problems.append(field_error(name, zh, en, code="required"))
    if profile.conditional_needs_policy_basis and resource.share_type == "conditional" and _blank(app.policy_basis):
        problems.append(
            field_error(
                "policy_basis",
                "按本辖区规定，申请有条件共享的信息资源须注明政策依据。",
                "Under this jurisdiction's rules a conditional request must cite its policy basis.",
                code="policy_basis_required",
            )
        )
    if app.valid_until_wanted is not None and app.valid_until_wanted <= now:
        problems.append(
            field_error(
                "valid_until", "申请的有效期须晚于当前时间。", "The validity must end in the future.", code="past"
            )
        )
    if problems:
        raise _invalid(problems)


def first_step(resource: ResourceView) -> int:
    """The escalation level a new request starts at: -1 (the provider's review), or 0 for not_shared data,
    which goes straight to negotiation or the coordinator (R3.3)."""
    return 0 if resource.share_type == "not_shared" else -1


def step(profile: Profile, level: int) -> EscalationStep | None:
    return profile.escalation[level] if 0 <= level < len(profile.escalation) else None


def decider(profile: Profile, state: str, level: int) -> Decider | None:
    """Who owes the answer now: the provider during its review and negotiation, the platform office at the
    coordinator and leading-group steps; nobody when the request is settled or waits on the consumer."""
    if state == "submitted":
        return "provider"
    if state == "escalated":
        s = step(profile, level)
        return "provider" if s is not None and s.name == "negotiation" else "platform_office"
    return None


def next_level(profile: Profile, state: str, level: int) -> int:
    """The level a refused request is escalated to; refuses when there is none."""
    if state != "rejected":
        raise Conflict(
            "只有未获同意的申请可以申请协调。",
            "Only a refused request can be escalated.",
            code="not_escalatable",
            details={"state": state},
        )
    target = level + 1
    if step(profile, target) is None:
        labels = "、".join(s.label for s in profile.escalation)
        raise Conflict(
            f"本辖区规定的协商协调途径（{labels}）已经用尽，该决定为最终决定。",
            f"This jurisdiction's escalation path ({labels}) is exhausted; the decision is final.",
            code="no_further_escalation",
        )
    return target


def ensure_decider(
    profile: Profile,
    *,
    state: str,
    level: int,
    consumer_code: str,
    provider_code: str,
    department: str | None,
    roles: Iterable[str],
) -> Decider:
    """The caller may decide the request now, or a 403/409 saying why not."""
    who = decider(profile, state, level)
    if who is None:
        raise Conflict(
            f"该申请当前状态为“{STATES.get(state, state)}”，不能作出决定。",
            f"The request is {state}; it cannot be decided now.",
            code="not_decidable",
            details={"state": state},
        )
    roles = set(roles)
    if department is not None and department == consumer_code and "platform_admin" not in roles:
        raise Forbidden(
            "使用部门不能审核本部门提出的共享申请。",
            "A consumer cannot decide its own request.",
            code="own_request",
        )
    if who == "provider":
        if department != provider_code or not roles & {"dept_reviewer", "dept_admin"}:
            raise Forbidden(
                "只有提供部门的审核员或信息资源管理员可以审核该申请。",
                "Only the provider department's reviewers decide this request.",
                code="not_provider_reviewer",
            )
    elif "platform_admin" not in roles:
        raise Forbidden(
            "该申请已进入协调程序，由平台管理机构作出决定。",
            "The request is under coordination; the platform office decides it.",
            code="coordinator_decides",
        )
    return who


def required_reason(value: str | None, field: str = "reason") -> str:
    if _blank(value):
        raise _invalid([field_error(field, "请填写理由。", "Give the reason.", code="required")])
    assert value is not None
    return value.strip()


@dataclass(frozen=True)
class GrantTerms:
    items: tuple[str, ...]
    unmasked_items: tuple[str, ...]
    conditions: tuple[str, ...]
    valid_from: datetime | None
    valid_until: datetime | None


def grant_terms(
    requested: Sequence[str],
    *,
    items: Sequence[str] | None,
    unmasked_items: Sequence[str],
    conditions: Sequence[str],
    valid_from: datetime | None,
    valid_until: datetime | None,
    now: datetime,
) -> GrantTerms:
    """What an approval grants: the requested items or fewer, unmasked ones among them, and a future end."""
    chosen = tuple(items) if items is not None else tuple(requested)
    problems: list[dict[str, str]] = []
    extra = [i for i in chosen if i not in requested]
    if not chosen:
        problems.append(field_error("items", "至少授权一个信息项。", "Grant at least one data item.", code="required"))
    elif extra:
        problems.append(
            field_error(
                "items",
                "只能在申请的信息项范围内授权，以下信息项未被申请：" + "、".join(extra),
                "Only requested items can be granted; not requested: " + ", ".join(extra),
                code="not_requested",
            )
        )
    outside = [i for i in unmasked_items if i not in chosen]
    if outside:
        problems.append(
            field_error(
                "unmasked_items",
                "不脱敏的信息项须在授权的信息项之内：" + "、".join(outside),
                "Unmasked items must be among the granted items: " + ", ".join(outside),
                code="not_granted",
            )
        )
    if valid_until is not None and valid_until <= now:
        problems.append(
            field_error("valid_until", "授权到期时间须晚于当前时间。", "The grant must end in the future.", code="past")
        )
    if valid_from is not None and valid_until is not None and valid_from >= valid_until:
        problems.append(
            field_error(
                "valid_from", "生效时间须早于到期时间。", "valid_from must be before valid_until.", code="order"
            )
        )
    if problems:
        raise _invalid(problems)
    cleaned = tuple(c.strip() for c in conditions if c.strip())
    return GrantTerms(chosen, tuple(dict.fromkeys(unmasked_items)), cleaned, valid_from, valid_until)


def ensure_transfer_allowed(profile: Profile) -> None:
    if not profile.third_party_transfer_allowed_with_approval:
        raise AppError(
            "按本辖区规定，共享数据不得向第三方提供；不受理第三方转移申请。",
            "Under this jurisdiction's rules shared data may not be passed to third parties.",
            code="transfer_not_allowed",
            status=409,
        )


def transfer_state(office: str | None, provider: str | None) -> str:
    """Both the platform office and the provider must approve; either refusal ends it (003 Art.23)."""
    if "refuse" in (office, provider):
        return "refused"
    if office == "approve" and provider == "approve":
        return "approved"
    return "pending"


def not_yours() -> Forbidden:
    return Forbidden(
        "只能查看本部门提出或需要本部门答复的共享申请。",
        "You may see only requests your department made or must answer.",
        code="not_your_request",
    )


# --- rights restrictions (001 Art.21) ------------------------------------------------------------------------


def ensure_sanctions_in_profile(profile: Profile) -> None:
    """Only a jurisdiction whose rules say so restricts a department's rights for a missed update cycle."""
    if not profile.update_cycle_sanctions:
        raise Conflict(
            "本辖区规定未设未按更新时限更新信息的权益限制措施。",
            "This jurisdiction's rules provide no restriction of rights for missed update cycles.",
            code="sanctions_not_in_profile",
        )


def ensure_missed_update(lapses: Sequence[object], department: str) -> None:
    """A restriction rests on a recorded lapse: a catalog update overdue or hosted data stale."""
    if not lapses:
        raise Conflict(
            "该部门没有未按更新时限提供或更新信息的记录，不能限制其权益。",
            "The department has no recorded missed update; its rights cannot be restricted.",
            code="no_missed_update",
            details={"department_code": department},
        )


def rights_restricted(reason: str, imposed_at: datetime, restriction_id: str) -> Forbidden:
    return Forbidden(
        f"本部门未按更新时限提供和更新信息，共享申请权益已被限制（{reason}），待平台管理机构解除后方可提出新的申请。",
        f"Your department's rights are restricted for a missed update cycle ({reason}); no new share request "
        "until the platform office lifts the restriction.",
        code="rights_restricted",
        details={"restriction_id": restriction_id, "reason": reason, "imposed_at": imposed_at.isoformat()},
    )


def not_yours_restriction() -> Forbidden:
    return Forbidden(
        "只能查看本部门的权益限制。", "You may see only your own department's restrictions.", code="not_yours"
    )


def written_application(s: EscalationStep | None, text: str | None) -> str | None:
    """The written application a step asks for (Xiangyang Art.10: 书面申请 to 市信息化办), required there;
    elsewhere what the consumer wrote, if anything, is kept as it is."""
    if s is not None and s.written_application and _blank(text):
        raise _invalid(
            [
                field_error(
                    "written_application",
                    f"按本辖区规定，提请{s.label}须提交书面申请，请填写申请书正文。",
                    f"This jurisdiction asks for a written application to this step ({s.name}); write it.",
                    code="required",
                )
            ]
        )
    return text.strip() if text and text.strip() else None
