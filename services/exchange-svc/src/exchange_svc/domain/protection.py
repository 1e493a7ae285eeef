"""Which data items are personal data to be kept encrypted at rest: a resident ID number, any item the catalog
marks personal or sensitive, and any item with a masking rule (names, addresses, phone numbers are marked so)."""

from __future__ import annotations

from exchange_svc.domain.resources import HostedResource, Item

PROTECTED_SENSITIVITIES = frozenset({"personal", "sensitive"})


def is_protected(item: Item) -> bool:
    return (
        item.identifier_kind == "resident_id"
        or item.sensitivity in PROTECTED_SENSITIVITIES
        or item.masking_rule != "none"
    )


def protected_items(resource: HostedResource) -> frozenset[str]:
    return frozenset(i.name for i in resource.items if is_protected(i))
