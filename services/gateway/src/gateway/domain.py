"""The gateway's rules, pure: which service owns a path, who may call it, and whether data may flow.

No web or database framework here: these decisions are the regulations' "unified authorisation" and "no
over-privileged access" (R4), readable and testable on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

from govshare_common.sharing import FlowDecision, grant_in_force, may_data_flow

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

DEPT_ROLES = frozenset({"dept_admin", "dept_reviewer", "dept_system"})
ANY_ROLE = frozenset({"platform_admin", "dept_admin", "dept_reviewer", "dept_system", "auditor", "federation_peer"})


@dataclass(frozen=True)
class Area:
    """A first path segment under /api/v1 and the service behind it."""

    name: str
    service: str
    read_roles: frozenset[str]
    write_roles: frozenset[str]
    anonymous_prefixes: tuple[str, ...] = ()  # reads under these pass without a token
    anonymous_posts: tuple[str, ...] = ()  # and POSTs to exactly these paths
    # Signed platform-to-platform calls: no token (the RFC 9421 signature, checked by the service, is their
    # authentication); in the peers' own rate bucket, not the public's.
    peer_prefixes: tuple[str, ...] = ()
    data_route: bool = False


AREAS: dict[str, Area] = {
    a.name: a
    for a in (
        Area(
            "catalog",
            "catalog",
            read_roles=ANY_ROLE,
            write_roles=frozenset({"dept_admin", "platform_admin"}),
            # The change feed a parent platform pulls: its RFC 9421 signature is its authentication, checked by
            # catalog-svc (federation.guard), which names the peer and any refusal in the access record.
            anonymous_prefixes=("/api/v1/catalog/open", "/api/v1/catalog/federation/changes"),
        ),
        Area(
            "requests",
            "request",
            read_roles=DEPT_ROLES | {"platform_admin", "auditor"},
            write_roles=DEPT_ROLES | {"platform_admin"},
            anonymous_posts=("/api/v1/requests/open-data-demands",),  # the public's demands (004 Art.20)
            # Cross-level requests from peer platforms, checked by request-svc (govshare_common.peer_guard), which
            # names the peer and any refusal in the access record.
            peer_prefixes=("/api/v1/requests/federation/forwarded", "/api/v1/requests/federation/status"),
        ),
        Area(
            "grants",
            "request",
            read_roles=DEPT_ROLES | {"platform_admin", "auditor"},
            write_roles=DEPT_ROLES | {"platform_admin"},
        ),
        Area(
            "exchange",
            "exchange",
            read_roles=DEPT_ROLES | {"platform_admin", "federation_peer"},
            write_roles=DEPT_ROLES | {"platform_admin"},
            anonymous_prefixes=("/api/v1/exchange/open/",),  # open data for the public (003 Art.27)
            # A peer's query, subscription and export for its department, checked by exchange-svc.
            peer_prefixes=(
                "/api/v1/exchange/federation/peer-records",
                "/api/v1/exchange/federation/peer-subscriptions",
                "/api/v1/exchange/federation/peer-exports",
            ),
            data_route=True,
        ),
        Area("audit", "audit", read_roles=frozenset({"auditor"}), write_roles=frozenset({"auditor"})),
        Area(
            "supervision",
            "audit",
            read_roles=frozenset({"platform_admin", "auditor", "dept_admin"}),
            write_roles=frozenset({"platform_admin", "dept_admin"}),
        ),
    )
}


# /api/v1 areas the gateway serves itself (identity administration, the calendar master).
LOCAL_AREAS = frozenset({"identity", "platform"})


@dataclass(frozen=True)
class RouteMatch:
    area: Area
    resource_code: str | None


def match_route(path: str) -> RouteMatch | None:
    """The area a proxied /api/v1 path belongs to, and for data routes the resource it touches."""
    parts = path.split("/")
    if len(parts) < 4 or parts[1] != "api" or parts[2] != "v1":
        return None
    area = AREAS.get(parts[3])
    if area is None:
        return None
    resource = None
    # Data routes name their resource as /api/v1/exchange/resources/<code>/..., the code URL-encoded
    # (codes contain "/": classification "/" sequence).
    if area.data_route and len(parts) >= 6 and parts[4] == "resources":
        resource = unquote(parts[5])
    return RouteMatch(area, resource)


def required_roles(area: Area, method: str) -> frozenset[str]:
    return area.read_roles if method.upper() in READ_METHODS else area.write_roles


def is_peer_call(area: Area, path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in area.peer_prefixes)


def is_anonymous(area: Area, path: str, method: str) -> bool:
    if method.upper() in READ_METHODS:
        return any(path.startswith(p) for p in area.anonymous_prefixes)
    return method.upper() == "POST" and path.rstrip("/") in area.anonymous_posts


@dataclass(frozen=True)
class ResourceView:
    code: str
    provider_code: str
    share_type: str  # unconditional | conditional | not_shared
    status: str  # published | withdrawn


@dataclass(frozen=True)
class GrantView:
    grant_id: str
    consumer_code: str
    resource_code: str
    purposes: frozenset[str]
    valid_from: datetime | None
    valid_until: datetime | None
    status: str  # active | revoked | expired

    def live(self, now: datetime) -> bool:
        return grant_in_force(self.status, self.valid_from, self.valid_until, now)


def decide_data_access(
    *,
    department: str | None,
    resource: ResourceView | None,
    grants: list[GrantView],
    purpose: str | None,
    now: datetime,
) -> FlowDecision[GrantView]:
    """May `department` touch `resource` now for `purpose`: the platform's one rule (govshare_common.sharing)."""
    return may_data_flow(
        department=department,
        provider_code=resource.provider_code if resource else None,
        share_type=resource.share_type if resource else None,
        published=resource is not None and resource.status == "published",
        resource_code=resource.code if resource else "",
        grants=grants,
        purpose=purpose,
        now=now,
    )
