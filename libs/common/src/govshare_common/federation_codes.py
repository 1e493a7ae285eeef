"""How a resource owned on another platform is named here (catalog-svc shows it so, request-svc and
exchange-svc resolve it), and which peer a call about it goes to next (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def mirrored_code(origin_division: str, code: str) -> str:
    """Codes are unique within one platform's catalog; a mirrored one is qualified by the platform that gave it."""
    return f"{origin_division}:{code}"


def shown_here(snapshot: Mapping[str, Any], origin: Mapping[str, Any]) -> dict[str, Any]:
    """A peer's resource as this platform's catalog lists it: under the code its departments apply and query by
    (qualified by the origin), the origin's own code kept beside it as `origin_code`."""
    return {
        **snapshot,
        "origin": dict(origin),
        "code": mirrored_code(str(origin["division_code"]), str(snapshot["code"])),
        "origin_code": snapshot["code"],
    }


def next_hop(origin: str, via: str | None, peers: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The peer a request or query about `origin`'s resource goes to next, hop by hop along the tree of parent
    and child relations: the owner itself when it is a registered peer; else the peer the resource's mirror came
    through (the child that passed a grandchild's resource up, or the parent that passed a sibling's down); else
    up to the parent, which knows more of the tree. None: no way there."""
    if origin in peers:
        return origin
    if via is not None and via in peers:
        return via
    parents = sorted(code for code, p in peers.items() if p.get("relation") == "parent")
    return parents[0] if parents else None
