"""Subscriptions and their change feed (resource-bound, so the gateway checks the grant at the door)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from govshare_common.bounds import BIGINT_MAX
from govshare_common.service import UoW

from exchange_svc import feeds
from exchange_svc.routes.common import (
    PREFIX,
    RESOURCE,
    DataReader,
    Limit,
    Offset,
    Purpose,
    Reader,
    Sealing,
    Staff,
    hash_key,
)

router = APIRouter(tags=["subscriptions"])


class SubscribeBody(BaseModel):
    from_start: bool = Field(default=False, description="从最早的变更读起（缺省：只看订阅之后的变更）")


class AckBody(BaseModel):
    cursor: int = Field(ge=0, le=BIGINT_MAX, description="已妥善保存的最后一条变更的 seq")


@router.post(f"{RESOURCE}/subscriptions", status_code=201, summary="订阅资源的数据变更（授权范围内）")
async def subscribe(
    uow: UoW, code: str, principal: DataReader, purpose: Purpose = None, body: SubscribeBody | None = None
) -> dict[str, Any]:
    return await feeds.subscribe(
        uow, principal, code=code, purpose=purpose, from_start=body.from_start if body else False
    )


@router.get(f"{RESOURCE}/subscriptions/{{subscription_id}}/changes", summary="读取变更（按 seq 有序，至少一次）")
async def changes(
    request: Request,
    uow: UoW,
    code: str,
    subscription_id: str,
    principal: DataReader,
    sealer: Sealing,
    purpose: Purpose = None,
    after: Annotated[int | None, Query(ge=0, le=BIGINT_MAX, description="从该 seq 之后读（缺省：已确认位置）")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    return await feeds.read(
        uow,
        principal,
        code=code,
        sub_id=subscription_id,
        purpose=purpose,
        after=after,
        limit=limit,
        hash_key=hash_key(request),
        sealer=sealer,
    )


@router.post(f"{RESOURCE}/subscriptions/{{subscription_id}}/ack", summary="确认已处理到的位置")
async def ack(uow: UoW, code: str, subscription_id: str, body: AckBody, principal: Reader) -> dict[str, Any]:
    return await feeds.acknowledge(uow, principal, code=code, sub_id=subscription_id, cursor=body.cursor)


@router.delete(f"{RESOURCE}/subscriptions/{{subscription_id}}", summary="取消订阅")
async def cancel(uow: UoW, code: str, subscription_id: str, principal: Reader) -> dict[str, Any]:
    return await feeds.cancel(uow, principal, code=code, sub_id=subscription_id)


@router.get(f"{PREFIX}/subscriptions", summary="本部门的订阅")
async def mine(uow: UoW, principal: Staff, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    return await feeds.mine(uow, principal, limit=limit, offset=offset)
