"""Grants: lists and details for the departments concerned, revocation, and third-party transfers (Hainan)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from govshare_common.errors import Forbidden, NotFound
from govshare_common.service import UoW

from request_svc import domain, flows, store
from request_svc.routes.common import (
    CurrentProfile,
    Limit,
    Offset,
    Reader,
    Reviewer,
    Writer,
    ensure_party,
    list_scope,
    page,
    show_grant,
)

router = APIRouter(prefix="/api/v1/grants", tags=["grants"])


class RevokeBody(BaseModel):
    reason: str | None = Field(default=None, max_length=4000, description="撤销理由（必填）")


class TransferBody(BaseModel):
    third_party: str = Field(min_length=1, max_length=200, description="接收数据的第三方名称")
    purpose: str = Field(min_length=1, max_length=4000, description="向第三方提供的用途")


class TransferDecisionBody(BaseModel):
    decision: Literal["approve", "refuse"]
    reason: str | None = Field(default=None, max_length=4000, description="不同意时必填")


async def _visible(uow: UoW, principal: Any, grant_id: str) -> dict[str, Any]:
    g = await store.grant(uow.conn, grant_id)
    if g is None:
        raise NotFound("授权不存在。", "No such grant.")
    ensure_party(principal, g)
    return g


@router.get("", summary="授权列表：本部门获得的和本部门给出的；平台管理员与审计员可见全部")
async def list_grants(
    uow: UoW,
    principal: Reader,
    status: Annotated[list[Literal["active", "revoked", "expired"]] | None, Query(description="状态")] = None,
    role: Annotated[Literal["consumer", "provider"] | None, Query(description="本部门作为使用方或提供方")] = None,
    department: Annotated[str | None, Query(max_length=18)] = None,
    resource_code: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> dict[str, Any]:
    scope = list_scope(principal)
    if scope is not None and department is not None and department != scope:
        raise Forbidden("只能查看本部门的授权。", "You may list only your department's grants.", code="not_your_grant")
    items, total = await store.grants(
        uow.conn,
        department=scope or department,
        role=role,
        statuses=list(status) if status else None,
        resource_code=resource_code,
        limit=limit,
        offset=offset,
    )
    return page([show_grant(g) for g in items], total, limit, offset)


@router.get("/{grant_id}", summary="授权详情（含第三方转移申请）")
async def detail(uow: UoW, grant_id: str, principal: Reader) -> dict[str, Any]:
    g = await _visible(uow, principal, grant_id)
    return show_grant(g) | {"transfers": await store.transfers_of(uow.conn, grant_id)}


@router.post("/{grant_id}/revoke", summary="撤销授权（提供部门或平台管理机构，须说明理由）")
async def revoke(uow: UoW, grant_id: str, body: RevokeBody, principal: Reviewer) -> dict[str, Any]:
    reason = domain.required_reason(body.reason)
    await flows.revoke_grant(uow, principal, grant_id, reason=reason)
    return await detail(uow, grant_id, principal)


@router.post(
    "/{grant_id}/transfers", status_code=201, summary="申请向第三方提供（海南省：须平台管理机构和提供部门同意）"
)
async def request_transfer(
    uow: UoW, grant_id: str, body: TransferBody, principal: Writer, prof: CurrentProfile
) -> dict[str, Any]:
    transfer_id = await flows.request_transfer(
        uow, principal, grant_id, third_party=body.third_party.strip(), purpose=body.purpose.strip(), profile=prof
    )
    result = await store.transfer(uow.conn, transfer_id)
    assert result is not None
    return result


@router.post("/{grant_id}/transfers/{transfer_id}/decision", summary="审批第三方转移（平台管理机构或提供部门）")
async def decide_transfer(
    uow: UoW, grant_id: str, transfer_id: str, body: TransferDecisionBody, principal: Reviewer, prof: CurrentProfile
) -> dict[str, Any]:
    t = await store.transfer(uow.conn, transfer_id)
    if t is None or t["grant_id"] != grant_id:
        raise NotFound("转移申请不存在。", "No such transfer request.")
    return await flows.decide_transfer(
        uow, principal, transfer_id, approve=body.decision == "approve", reason=body.reason, profile=prof
    )
