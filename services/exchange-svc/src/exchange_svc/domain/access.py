"""Who may read a hosted resource, which items they receive, and how personal items are masked (R3.1, R3.5, R4).

The gateway decides at the door; exchange-svc decides again here from its own projections, so a direct call
without a grant is refused too. A provider reads its own data in full. An unconditional resource gives every
item; a conditional one gives the items of the consumer's live grants for the stated purpose. Personal items
are masked by their catalog masking rule unless a grant names them in unmasked_items.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from govshare_common.identifiers import mask_address, mask_name, mask_phone, mask_resident_id
from govshare_common.sharing import PURPOSES, grant_in_force

from exchange_svc.domain.resources import HostedResource, Item


@dataclass(frozen=True)
class GrantView:
    grant_id: str
    consumer_code: str
    resource_code: str
    items: frozenset[str]
    unmasked_items: frozenset[str]
    purposes: frozenset[str]
    valid_from: datetime | None
    valid_until: datetime | None
    status: str

    def live(self, now: datetime) -> bool:
        return grant_in_force(self.status, self.valid_from, self.valid_until, now)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    grant_id: str | None = None
    items: tuple[str, ...] = ()
    unmasked: frozenset[str] = frozenset()
    provider: bool = False


REFUSALS: dict[str, tuple[str, str]] = {
    "resource_not_published": ("该信息资源未发布或已撤销。", "The resource is not published."),
    "not_hosted": ("该信息资源不在平台托管数据。", "The platform hosts no data for this resource."),
    "no_department": ("调用方未归属任何部门，不能访问共享数据。", "The caller belongs to no department."),
    "not_shared": ("该信息资源不予共享。", "This resource is not shared."),
    "no_live_grant": ("本部门没有该信息资源的有效授权，请先提出共享申请。", "Your department holds no live grant."),
    "purpose_not_granted": (
        "所述用途不在授权范围内，请按授权的用途使用。",
        "The stated purpose is not one the grant allows.",
    ),
    "purpose_required": (
        "请在 X-Govshare-Purpose 请求头中说明共享用途。",
        "State the purpose in the X-Govshare-Purpose header.",
    ),
    "purpose_unknown": ("共享用途代码不正确。", "Unknown purpose code."),
}


def decide(
    *,
    department: str | None,
    resource: HostedResource | None,
    grants: list[GrantView],
    purpose: str | None,
    now: datetime,
) -> Decision:
    """May `department` read `resource` now for `purpose`, and which items, unmasked which?"""
    if resource is None or resource.status != "published":
        return Decision(False, "resource_not_published")
    if department is None:
        return Decision(False, "no_department")
    everything = resource.item_names
    if resource.provider_code == department:
        return Decision(True, "provider", None, everything, frozenset(everything), provider=True)
    if purpose is None:
        return Decision(False, "purpose_required")
    if purpose not in PURPOSES:
        return Decision(False, "purpose_unknown")
    if resource.share_type == "not_shared":
        return Decision(False, "not_shared")
    live = [g for g in grants if g.consumer_code == department and g.resource_code == resource.code and g.live(now)]
    fitting = [g for g in live if purpose in g.purposes]
    if resource.share_type == "unconditional":
        unmasked = frozenset().union(*(g.unmasked_items for g in fitting)) if fitting else frozenset()
        return Decision(True, "unconditional", fitting[0].grant_id if fitting else None, everything, unmasked)
    if not live:
        return Decision(False, "no_live_grant")
    if not fitting:
        return Decision(False, "purpose_not_granted")
    granted = frozenset().union(*(g.items for g in fitting))
    unmasked = frozenset().union(*(g.unmasked_items for g in fitting)) & granted
    return Decision(True, "grant", fitting[0].grant_id, tuple(n for n in everything if n in granted), unmasked)


def mask_full(value: str) -> str:
    return "*" * len(value) if len(value) <= 8 else "********"


MASKS = {
    "resident_id": mask_resident_id,
    "name": mask_name,
    "phone": mask_phone,
    "address": mask_address,
    "full": mask_full,
}


def mask_value(item: Item, value: Any) -> Any:
    """The value as a consumer without unmasked access sees it."""
    if value is None:
        return None
    rule = item.masking_rule
    if rule == "none" and item.sensitivity == "personal":
        rule = "full"  # personal data without a declared rule is never shown in clear by default
    mask = MASKS.get(rule)
    return mask(str(value)) if mask else value


def shape(data: dict[str, Any], resource: HostedResource, decision: Decision) -> dict[str, Any]:
    """The items `decision` covers, masked unless unmasked."""
    out: dict[str, Any] = {}
    for name in decision.items:
        if name not in data:
            continue
        item = resource.item(name)
        value = data[name]
        out[name] = (
            value if (decision.provider or name in decision.unmasked or item is None) else mask_value(item, value)
        )
    return out
