"""Which peer a cross-level request goes to next (pure).

Platforms form a tree of parent and child relations; a request travels hop by hop to the platform that owns
the resource. The owner itself when it is a registered peer; else the peer the resource's mirror came through
(the child that passed a grandchild's resource up, or the parent that passed a sibling's down); else up to the
parent, which knows more of the tree. None: no way there (then the application is refused, nothing stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def next_hop(origin: str, via: str | None, peers: Mapping[str, Mapping[str, Any]]) -> str | None:
    if origin in peers:
        return origin
    if via is not None and via in peers:
        return via
    parents = sorted(code for code, p in peers.items() if p.get("relation") == "parent")
    return parents[0] if parents else None
