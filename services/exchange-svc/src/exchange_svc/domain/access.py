"""Who may read a hosted resource, which items they receive, and how personal items are masked (R3.1, R3.5, R4).

The gateway decides at the door; exchange-svc decides again here from its own projections by the same rule
(govshare_common.sharing.may_data_flow), so a direct call without a grant is refused too and a grant the door
honours (a binding coordination of not_shared data included) is honoured here. A provider reads its own data
in full. An unconditional resource gives every item; a conditional or not_shared one gives the items of the
consumer's live grants for the stated purpose. Personal items are masked by their catalog masking rule unless a
grant names them in unmasked_items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from govshare_common.identifiers import mask_address, mask_name, mask_phone, mask_resident_id
from govshare_common.sharing import FLOW_REFUSALS, grant_in_force, may_data_flow

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
    **FLOW_REFUSALS,
    "not_hosted": ("该信息资源不在平台托管数据。", "The platform hosts no data for this resource."),
    "peer_not_provider": (
        "对端平台的部门不是本平台信息资源的提供部门。",
        "A peer platform's department is not the provider of this platform's resource.",
    ),
}


def decide(
    *,
    department: str | None,
    resource: HostedResource | None,
    grants: list[GrantView],
    purpose: str | None,
    now: datetime,
) -> Decision:
    """May `department` read `resource` now for `purpose` (the platform's one rule, as at the door), and which
    items, unmasked which?"""
    flow = may_data_flow(
        department=department,
        provider_code=resource.provider_code if resource else None,
        share_type=resource.share_type if resource else None,
        published=resource is not None and resource.status == "published",
        resource_code=resource.code if resource else "",
        grants=grants,
        purpose=purpose,
        now=now,
    )
    if not flow.allowed or resource is None:
        return Decision(False, flow.reason)
    everything = resource.item_names
    if flow.reason == "provider":
        return Decision(True, "provider", None, everything, frozenset(everything), provider=True)
    unmasked = frozenset().union(*(g.unmasked_items for g in flow.grants))
    if flow.reason == "unconditional":
        return Decision(True, "unconditional", flow.grant_id, everything, unmasked)
    granted = frozenset().union(*(g.items for g in flow.grants))
    return Decision(True, "grant", flow.grant_id, tuple(n for n in everything if n in granted), unmasked & granted)


def mask_full(value: str) -> str:
    return "*" * len(value) if len(value) <= 8 else "********"


MASKS = {
    "resident_id": mask_resident_id,
    "name": mask_name,
    "phone": mask_phone,
    "address": mask_address,
    "full": mask_full,
}


def _mask_of(item: Item) -> Callable[[str], str] | None:
    rule = item.masking_rule
    if rule == "none" and item.sensitivity == "personal":
        rule = "full"  # personal data without a declared rule is never shown in clear by default
    return MASKS.get(rule)


def mask_value(item: Item, value: Any) -> Any:
    """The value as a consumer without unmasked access sees it."""
    if value is None:
        return None
    mask = _mask_of(item)
    return mask(str(value)) if mask else value


def shaper(resource: HostedResource, decision: Decision) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`shape` for many rows of one resource and decision: which item is shown how, worked out once."""
    plan: list[tuple[str, Callable[[str], str] | None]] = []
    for name in decision.items:
        item = resource.item(name)
        shown = decision.provider or name in decision.unmasked or item is None
        plan.append((name, None if shown or item is None else _mask_of(item)))

    def shaped(data: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, mask in plan:
            if name not in data:
                continue
            value = data[name]
            out[name] = value if mask is None or value is None else mask(str(value))
        return out

    return shaped


def shape(data: dict[str, Any], resource: HostedResource, decision: Decision) -> dict[str, Any]:
    """The items `decision` covers, masked unless unmasked."""
    return shaper(resource, decision)(data)
