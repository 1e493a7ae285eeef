"""Rights restrictions for missed update cycles (001 Art.21): the platform office imposes and lifts them; a
department sees its own, with the reason and the lapses behind it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from govshare_common.auth import Principal, require_roles
from govshare_common.service import UoW

from request_svc import domain, restrictions
from request_svc.routes.common import CurrentProfile, Limit, Offset, Reader, list_scope, page

router = APIRouter(prefix="/api/v1/requests/restrictions", tags=["rights restrictions"])
Office = Annotated[Principal, Depends(require_roles("platform_admin"))]


class ImposeBody(BaseModel):
    department_code: str = Field(min_length=1, max_length=18, description="被限制权益的部门代码")
    reason: str | None = Field(default=None, max_length=4000, description="限制理由（必填）")


class LiftBody(BaseModel):
    reason: str | None = Field(default=None, max_length=4000, description="解除理由（必填）")


@router.get("", summary="权益限制：平台管理员、审计员看全部，部门看本部门的（含理由）")
async def list_restrictions(
    uow: UoW,
    principal: Reader,
    department: Annotated[str | None, Query(max_length=18, description="部门代码")] = None,
    in_force: Annotated[bool, Query(description="只看限制中的")] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    scope = list_scope(principal) or department
    items, total = await restrictions.listing(uow, department=scope, in_force_only=in_force, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.get("/lapses", summary="未按更新时限提供或更新信息的记录（限制权益的依据）")
async def list_lapses(
    uow: UoW,
    principal: Reader,
    department: Annotated[str | None, Query(max_length=18, description="部门代码")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await restrictions.lapses(uow, list_scope(principal) or department, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.post("", status_code=201, summary="限制部门权益：不得提出新的共享申请（平台管理员；肥城市）")
async def impose(uow: UoW, body: ImposeBody, principal: Office, prof: CurrentProfile) -> dict[str, Any]:
    reason = domain.required_reason(body.reason)
    return await restrictions.impose(
        uow, principal, department=body.department_code.strip(), reason=reason, profile=prof
    )


@router.get("/{restriction_id}", summary="权益限制详情")
async def detail(uow: UoW, restriction_id: str, principal: Reader) -> dict[str, Any]:
    found = await restrictions.get(uow, restriction_id)
    scope = list_scope(principal)
    if scope is not None and scope != found["department_code"]:
        raise domain.not_yours_restriction()
    return found


@router.post("/{restriction_id}/lift", summary="解除权益限制（平台管理员）")
async def lift(uow: UoW, restriction_id: str, body: LiftBody, principal: Office) -> dict[str, Any]:
    return await restrictions.lift(uow, principal, restriction_id, reason=domain.required_reason(body.reason))
