"""Single source: declared authoritative providers per item, and the platform office's arbitration of conflicts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from govshare_common.service import UoW

from exchange_svc import conflicts
from exchange_svc.routes.common import PREFIX, Limit, Offset, PlatformAdmin, Sealing, Staff, hash_key

router = APIRouter(tags=["single source"])


class SourceBody(BaseModel):
    item: str = Field(min_length=1, max_length=64, description="信息项")
    provider_code: str = Field(min_length=18, max_length=18, description="权威来源部门（统一社会信用代码）")


class ArbitrateBody(BaseModel):
    choose: Literal["authoritative", "candidate"] = Field(description="采用权威来源的值，或另一部门报送的值")
    make_source: bool = Field(default=False, description="同时把报送部门定为该信息项的权威来源")
    comment: str | None = Field(default=None, max_length=2000, description="裁决意见")


@router.put(f"{PREFIX}/sources/{{code:path}}", summary="声明基础信息资源某信息项的权威来源（平台管理机构）")
async def declare(uow: UoW, code: str, body: SourceBody, principal: PlatformAdmin) -> dict[str, Any]:
    return await conflicts.declare_source(uow, principal, code=code, item=body.item, provider=body.provider_code)


@router.get(f"{PREFIX}/sources/{{code:path}}", summary="各信息项的权威来源")
async def list_sources(uow: UoW, code: str, principal: Staff) -> dict[str, Any]:
    return await conflicts.sources(uow, code=code)


@router.get(f"{PREFIX}/conflicts", summary="数据冲突（平台管理机构看全部，部门看与本部门有关的）")
async def list_conflicts(
    uow: UoW,
    principal: Staff,
    sealer: Sealing,
    state: Annotated[Literal["open", "arbitrated"] | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    return await conflicts.listing(uow, principal, state=state, limit=limit, offset=offset, sealer=sealer)


@router.post(f"{PREFIX}/conflicts/{{conflict_id}}/arbitrate", summary="裁决数据冲突（平台管理机构）")
async def arbitrate(
    request: Request, uow: UoW, conflict_id: str, body: ArbitrateBody, principal: PlatformAdmin, sealer: Sealing
) -> dict[str, Any]:
    return await conflicts.arbitrate(
        uow,
        principal,
        conflict_id=conflict_id,
        choose=body.choose,
        make_source=body.make_source,
        comment=body.comment,
        hash_key=hash_key(request),
        sealer=sealer,
    )
