"""What every audit-svc handler shares: roles, pagination, department scoping."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from govshare_common.auth import Principal, require_roles
from govshare_common.errors import Forbidden

AUDIT = "/api/v1/audit"
SUPERVISION = "/api/v1/supervision"

Auditor = Annotated[Principal, Depends(require_roles("auditor"))]
PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]
DeptAdmin = Annotated[Principal, Depends(require_roles("dept_admin"))]
Supervisor = Annotated[Principal, Depends(require_roles("platform_admin", "auditor", "dept_admin"))]
Reporter = Annotated[Principal, Depends(require_roles("platform_admin", "dept_admin"))]
Limit = Annotated[int, Query(ge=1, le=500, description="每页条数")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="跳过条数")]


def page(items: list[Any], total: int, limit: int, offset: int, **extra: Any) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset, **extra}


def department_scope(principal: Principal, department: str | None) -> str | None:
    """Which department the caller may look at: any for the platform office and auditors, else its own."""
    if principal.has("platform_admin", "auditor"):
        return department
    if principal.department is None or (department is not None and department != principal.department):
        raise Forbidden(
            "只能查看本部门的监督信息。",
            "You may see only your own department's supervision data.",
            details={"department": department},
        )
    return principal.department
