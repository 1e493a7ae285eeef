"""What every catalog handler shares: roles, pagination, who may see drafts, facet filters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from govshare_common.auth import Principal, require_roles
from govshare_common.profiles import Profile

from catalog_svc.domain import FormatCategory, ResourceClass, ShareMethodType, ShareType, UpdateCycle
from catalog_svc.search import Filters

PREFIX = "/api/v1/catalog"

DeptAdmin = Annotated[Principal, Depends(require_roles("dept_admin"))]
PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]
Maintainer = Annotated[Principal, Depends(require_roles("dept_admin", "platform_admin"))]
Limit = Annotated[int, Query(ge=1, le=200, description="每页条数")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="跳过条数")]

READ_ALL_ROLES = ("platform_admin", "auditor")


def profile(request: Request) -> Profile:
    return request.app.state.profile  # type: ignore[no-any-return]


def sees_drafts(principal: Principal, provider_code: str) -> bool:
    """A department's own staff and the platform office see drafts; everyone else only what is published."""
    return principal.has(*READ_ALL_ROLES) or principal.department == provider_code


def page(items: list[Any], total: int, limit: int, offset: int, **extra: Any) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset, **extra}


def catalog_filters(
    resource_class: Annotated[ResourceClass | None, Query(description="类")] = None,
    provider_code: Annotated[str | None, Query(description="提供方代码")] = None,
    share_type: Annotated[ShareType | None, Query(description="共享类型")] = None,
    share_method_type: Annotated[ShareMethodType | None, Query(description="共享方式类型")] = None,
    update_cycle: Annotated[UpdateCycle | None, Query(description="更新周期")] = None,
    format_category: Annotated[FormatCategory | None, Query(description="信息资源格式分类")] = None,
    open_to_public: Annotated[bool | None, Query(description="是否向社会开放")] = None,
    code: Annotated[str | None, Query(description="信息资源代码")] = None,
) -> Filters:
    return Filters(
        resource_class=resource_class,
        provider_code=provider_code,
        share_type=share_type,
        share_method_type=share_method_type,
        update_cycle=update_cycle,
        format_category=format_category,
        open_to_public=open_to_public,
        code=code,
    )


CatalogFilters = Annotated[Filters, Depends(catalog_filters)]
