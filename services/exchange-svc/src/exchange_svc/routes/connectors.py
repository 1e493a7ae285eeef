"""The departments' front-end connectors: their heartbeat in, the platform's view of them out, and the data
items a connector checks its mapping against."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from govshare_common.service import UoW

from exchange_svc import connectors
from exchange_svc.guard import require_resource
from exchange_svc.routes.common import PREFIX, RESOURCE, DataReader, Purpose, Sender, Staff

router = APIRouter(tags=["connectors"])


class Heartbeat(BaseModel):
    serve_url: str | None = Field(default=None, max_length=500, description="前置机联机查询地址（平台可达）")
    serve_token: str | None = Field(default=None, min_length=32, max_length=200, description="平台调用前置机的凭据")
    serves: list[str] = Field(default_factory=list, max_length=200, description="由本前置机应答联机查询的资源代码")
    sources: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    subscriptions: list[dict[str, Any]] = Field(default_factory=list, max_length=200)


ConnectorName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,40}$", description="前置机名称")]


@router.put(f"{PREFIX}/connectors/{{name}}", summary="前置机心跳：运行状况、延迟与应答的联机查询资源")
async def heartbeat(uow: UoW, name: ConnectorName, body: Heartbeat, principal: Sender) -> dict[str, Any]:
    return await connectors.heartbeat(uow, principal, name=name, report=body.model_dump())


@router.get(f"{PREFIX}/connectors", summary="前置机运行状况（平台管理机构看全部，部门看本部门）")
async def listing(uow: UoW, principal: Staff) -> dict[str, Any]:
    return await connectors.listing(uow, principal)


@router.get(f"{RESOURCE}/items", summary="资源的信息项与记录主键（前置机据此核对映射）")
async def items(uow: UoW, code: str, _principal: DataReader, _purpose: Purpose = None) -> dict[str, Any]:
    resource = await require_resource(uow, code)
    return {
        "resource_code": resource.code,
        "provider_code": resource.provider_code,
        "share_method_type": resource.share_method_type,
        "key_items": list(resource.key_items),
        "items": [{"name": i.name, "label": i.label, "data_type": i.data_type} for i in resource.items],
    }
