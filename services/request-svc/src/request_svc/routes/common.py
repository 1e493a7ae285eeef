"""What every request-svc handler shares: roles, pagination, the profile and calendar, and how rows are shown."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from govshare_common.auth import CurrentPrincipal, Principal, require_roles
from govshare_common.calendar_store import CalendarService
from govshare_common.errors import Forbidden
from govshare_common.jurisdictions import profile_named
from govshare_common.profiles import Profile
from govshare_common.sharing import PURPOSES

from request_svc import domain

DEPT_ROLES = ("dept_admin", "dept_reviewer", "dept_system")
READ_ALL_ROLES = ("platform_admin", "auditor")

Reviewer = Annotated[Principal, Depends(require_roles("dept_reviewer", "dept_admin", "platform_admin"))]
Writer = Annotated[Principal, Depends(require_roles(*DEPT_ROLES, "platform_admin"))]
Reader = Annotated[Principal, Depends(require_roles(*DEPT_ROLES, *READ_ALL_ROLES))]
Limit = Annotated[int, Query(ge=1, le=200, description="每页条数")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="跳过条数")]


def profile(request: Request) -> Profile:
    return request.app.state.profile  # type: ignore[no-any-return]


def calendar(request: Request) -> CalendarService:
    return request.app.state.calendar  # type: ignore[no-any-return]


CurrentProfile = Annotated[Profile, Depends(profile)]
Calendar = Annotated[CalendarService, Depends(calendar)]


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def reads_all(principal: Principal) -> bool:
    return principal.has(*READ_ALL_ROLES)


def own_department(principal: Principal) -> str:
    """The caller's department, for an action a department takes on its own behalf."""
    if principal.department is None:
        raise Forbidden(
            "调用方不属于任何部门，不能以部门身份提出申请。",
            "The caller belongs to no department.",
            code="no_department",
        )
    return principal.department


def list_scope(principal: Principal) -> str | None:
    """Whose rows a list shows: everything for the platform office and auditors, else the caller's department."""
    if reads_all(principal):
        return None
    return own_department(principal)


def ensure_party(principal: Principal, row: dict[str, Any]) -> None:
    if reads_all(principal):
        return
    if principal.department not in (row["consumer_code"], row["provider_code"]):
        raise domain.not_yours()


def show_request(row: dict[str, Any], platform: Profile) -> dict[str, Any]:
    prof = profile_named(row.get("profile"), platform)  # the provider's jurisdiction's, fixed at submission
    s = domain.step(prof, row["escalation_level"])
    awaiting = domain.decider(prof, row["state"], row["escalation_level"])
    labels = {"provider": "提供部门", "platform_office": "平台管理机构"}
    awaiting_label = "使用部门" if row["state"] == "info_requested" else labels.get(awaiting or "")
    return {
        **{k: v for k, v in row.items() if k not in ("info_requested_on",)},
        "state_label": domain.STATES.get(row["state"], row["state"]),
        "profile": prof.name,
        "profile_display_name": prof.display_name,
        "purpose_labels": [PURPOSES.get(p, p) for p in row["purposes"]],
        "escalation_step": (
            {"level": row["escalation_level"], "name": s.name, "label": s.label, "deadline_wd": s.deadline_wd}
            if s is not None and row["escalation_level"] >= 0
            else None
        ),
        "awaiting": "consumer" if row["state"] == "info_requested" else awaiting,
        "awaiting_label": awaiting_label,
        "overdue": row["overdue_since"] is not None,
        "paused_since": row.get("info_requested_on"),
    }


def show_grant(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "status_label": domain.GRANT_STATES.get(row["status"], row["status"]),
        "purpose_labels": [PURPOSES.get(p, p) for p in row["purposes"]],
    }


__all__ = ["CurrentPrincipal"]
