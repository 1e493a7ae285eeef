"""The sharing vocabulary every service speaks (docs/event-contracts.md): what data may be used for, when a
grant is in force, and whether data may flow to a department. Pure: the gateway's door and exchange-svc decide
with the same rule, so a decision one honours the other never refuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, Protocol, TypeVar

# 共享用途 (R3.2, Hainan Art.20): codes in events and headers, Chinese labels for people.
PURPOSES: dict[str, str] = {
    "administrative_basis": "行政依据",
    "work_reference": "工作参考",
    "data_verification": "数据校核",
    "business_collaboration": "业务协同",
    "other": "其他",
}
# The platform office where events and records expect a department code: it holds none of its own. It is the
# party a request waits on at a coordinator or leading-group step, and a platform admin's revocation's author.
PLATFORM_OFFICE = "platform"

Purpose = Literal["administrative_basis", "work_reference", "data_verification", "business_collaboration", "other"]


def grant_in_force(status: str, valid_from: datetime | None, valid_until: datetime | None, now: datetime) -> bool:
    """An active grant whose validity window holds `now` (no start: from issue; no end: until revoked)."""
    if status != "active":
        return False
    if valid_from is not None and now < valid_from:
        return False
    return valid_until is None or now < valid_until


class GrantTerms(Protocol):
    """What the flow rule reads of a grant; the gateway's and exchange-svc's grant views both have it."""

    @property
    def consumer_code(self) -> str: ...
    @property
    def resource_code(self) -> str: ...
    @property
    def purposes(self) -> frozenset[str]: ...
    @property
    def status(self) -> str: ...
    @property
    def valid_from(self) -> datetime | None: ...
    @property
    def valid_until(self) -> datetime | None: ...


G = TypeVar("G", bound=GrantTerms)

# The reasons a flow is refused, the codes the door and exchange-svc both put in the 403's details.reason.
FLOW_REFUSALS: dict[str, tuple[str, str]] = {
    "resource_not_published": ("该信息资源未发布或已撤销。", "The resource is not published."),
    "no_department": ("调用方未归属任何部门，不能访问共享数据。", "The caller belongs to no department."),
    "purpose_required": (
        "请在 X-Govshare-Purpose 请求头中说明共享用途。",
        "State the purpose in the X-Govshare-Purpose header.",
    ),
    "purpose_unknown": ("共享用途代码不正确。", "Unknown purpose code."),
    "not_shared": (
        "该信息资源不予共享；如确需使用，请经协商协调取得授权。",
        "This resource is not shared; only a grant from negotiation or coordination opens it.",
    ),
    "no_live_grant": ("本部门没有该信息资源的有效授权，请先提出共享申请。", "Your department holds no live grant."),
    "purpose_not_granted": (
        "所述用途不在授权范围内，请按授权的用途使用。",
        "The stated purpose is not one the grant allows.",
    ),
    "department_not_filed": (
        "本部门尚未完成首次接入书面备案（承诺遵守共享和保密规定），请由平台管理机构登记备案后再使用共享数据。",
        "Your department has not filed its first-access commitment; the platform office records it before any "
        "use of shared data.",
    ),
}


def unfiled_use_refused(*, filing_required: bool, filed: bool) -> bool:
    """Is a principal of a department refused the use of shared data for want of its first-access filing?

    Hainan 003 Art.36: a body connecting to the platform to use information resources first files in writing
    with the authority and commits to the sharing and secrecy rules. Where the profile asks for the filing
    (`first_access_filing_required`) it binds every principal of the department — users as well as machine
    clients; elsewhere no filing is owed.
    """
    return filing_required and not filed


@dataclass(frozen=True)
class FlowDecision(Generic[G]):
    allowed: bool
    reason: str  # provider | unconditional | grant, or a key of FLOW_REFUSALS
    grants: tuple[G, ...] = ()  # the caller's live grants for the stated purpose, oldest first

    @property
    def grant_id(self) -> str | None:
        return getattr(self.grants[0], "grant_id", None) if self.grants else None


def may_data_flow(
    *,
    department: str | None,
    provider_code: str | None,
    share_type: str | None,
    published: bool,
    resource_code: str,
    grants: Sequence[G],
    purpose: str | None,
    now: datetime,
) -> FlowDecision[G]:
    """May `department` take data of the resource now, for `purpose` (R3.1–R3.5)?

    The provider reaches its own data without stating a purpose. Anyone else states one of PURPOSES: shared
    data is used only for the purpose stated (003 Art.23, 004 Art.19). Unconditional data flows to every
    department (its grants still say which items are unmasked); conditional data flows under a live grant
    for that purpose; not_shared data only under a grant too, which only a negotiation or a binding
    coordinator's or leading group's decision issues (000 Art.18, 002 Art.10, 004 Art.17).
    """
    if not published:
        return FlowDecision(False, "resource_not_published")
    if department is None:
        return FlowDecision(False, "no_department")
    if provider_code == department:
        return FlowDecision(True, "provider")
    if purpose is None:
        return FlowDecision(False, "purpose_required")
    if purpose not in PURPOSES:
        return FlowDecision(False, "purpose_unknown")
    live = [
        g
        for g in grants
        if g.consumer_code == department
        and g.resource_code == resource_code
        and grant_in_force(g.status, g.valid_from, g.valid_until, now)
    ]
    fitting = tuple(g for g in live if purpose in g.purposes)
    if share_type == "unconditional":
        return FlowDecision(True, "unconditional", fitting)
    if not live:
        return FlowDecision(False, "not_shared" if share_type == "not_shared" else "no_live_grant")
    if not fitting:
        return FlowDecision(False, "purpose_not_granted")
    return FlowDecision(True, "grant", fitting)
