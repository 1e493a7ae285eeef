"""Cross-level subscription (issue 16 item 5): a department's subscription at home to a resource another
platform owns; and a peer platform's signed calls for one of its departments' subscriptions here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from govshare_common.bounds import BIGINT_MAX
from govshare_common.peer_guard import VerifiedCall
from govshare_common.service import UoW

from exchange_svc import cross_level_subscriptions as subscriptions
from exchange_svc.routes.common import PREFIX, DataReader, Limit, Offset, Purpose, Reader, Sealing, Staff, hash_key
from exchange_svc.routes.peer_answers import answer_signed, body_of

router = APIRouter(prefix=f"{PREFIX}/federation", tags=["cross-level subscriptions"])

After = Annotated[int | None, Query(ge=0, le=BIGINT_MAX, description="从该 seq 之后读（缺省：已确认位置）")]
ReadLimit = Annotated[int, Query(ge=1, le=5000)]
Consumer = Annotated[str, Query(min_length=1, max_length=18, description="对端平台部门的统一社会信用代码")]


class CrossLevelSubscribeBody(BaseModel):
    resource_code: str = Field(min_length=1, max_length=80, description="本平台目录中的跨平台资源代码（<平台>:<代码>）")
    from_start: bool = Field(default=False, description="从最早的变更读起（缺省：只看订阅之后的变更）")


class AckBody(BaseModel):
    cursor: int = Field(ge=0, le=BIGINT_MAX, description="已妥善保存的最后一条变更的 seq")


def _client(request: Request) -> Any:
    return getattr(request.app.state, "peer_client", None)


@router.post("/subscriptions", status_code=201, summary="跨平台订阅：订阅其他平台信息资源的数据变更（按其授权）")
async def subscribe(
    request: Request, uow: UoW, body: CrossLevelSubscribeBody, principal: DataReader, purpose: Purpose = None
) -> dict[str, Any]:
    return await subscriptions.subscribe(
        uow, principal, _client(request), code=body.resource_code, purpose=purpose, from_start=body.from_start
    )


@router.get("/subscriptions", summary="本部门的跨平台订阅")
async def mine(uow: UoW, principal: Staff, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    return await subscriptions.mine(uow, principal, limit=limit, offset=offset)


@router.get("/subscriptions/{subscription_id}/changes", summary="读取跨平台订阅的变更（按 seq 有序，至少一次）")
async def changes(
    request: Request,
    uow: UoW,
    subscription_id: str,
    principal: DataReader,
    after: After = None,
    limit: ReadLimit = 500,
) -> dict[str, Any]:
    return await subscriptions.read(
        uow, principal, _client(request), sub_id=subscription_id, after=after, limit=limit, hash_key=hash_key(request)
    )


@router.post("/subscriptions/{subscription_id}/ack", summary="确认跨平台订阅已处理到的位置")
async def ack(request: Request, uow: UoW, subscription_id: str, body: AckBody, principal: Reader) -> dict[str, Any]:
    return await subscriptions.acknowledge(uow, principal, _client(request), sub_id=subscription_id, cursor=body.cursor)


@router.delete("/subscriptions/{subscription_id}", summary="取消跨平台订阅（所属平台一并取消）")
async def cancel(request: Request, uow: UoW, subscription_id: str, principal: Reader) -> dict[str, Any]:
    return await subscriptions.cancel(uow, principal, _client(request), sub_id=subscription_id)


class PeerSubscribeBody(BaseModel):
    resource: str = Field(min_length=1, max_length=64)
    consumer: str = Field(min_length=1, max_length=18)
    principal: str = Field(default="", max_length=200)
    purpose: str | None = Field(default=None, max_length=64)
    from_start: bool = False


class PeerAckBody(BaseModel):
    consumer: str = Field(min_length=1, max_length=18)
    cursor: int = Field(ge=0, le=BIGINT_MAX)


@router.post("/peer-subscriptions", summary="对端平台为其部门订阅本平台信息资源（签名调用）")
async def peer_subscribe(request: Request, uow: UoW) -> Response:
    async def work(call: VerifiedCall) -> dict[str, Any]:
        body = body_of(call, PeerSubscribeBody)
        return await subscriptions.answer_subscribe(
            uow,
            call.peer,
            idempotency_key=call.idempotency_key,
            resource=body.resource,
            consumer=body.consumer,
            asker=body.principal,
            purpose=body.purpose,
            from_start=body.from_start,
        )

    return await answer_signed(request, uow, work)


@router.get("/peer-subscriptions/{subscription_id}/changes", summary="对端平台读取其部门订阅的变更（签名调用）")
async def peer_changes(
    request: Request,
    uow: UoW,
    sealer: Sealing,
    subscription_id: str,
    consumer: Consumer,
    principal: Annotated[str, Query(max_length=200)] = "",
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    after: After = None,
    limit: ReadLimit = 500,
) -> Response:
    async def work(call: VerifiedCall) -> dict[str, Any]:
        return await subscriptions.answer_read(
            uow,
            call.peer,
            sub_id=subscription_id,
            consumer=consumer,
            asker=principal,
            purpose=purpose,
            after=after,
            limit=limit,
            hash_key=hash_key(request),
            sealer=sealer,
        )

    return await answer_signed(request, uow, work)


@router.post("/peer-subscriptions/{subscription_id}/ack", summary="对端平台确认其部门订阅的位置（签名调用）")
async def peer_ack(request: Request, uow: UoW, subscription_id: str) -> Response:
    async def work(call: VerifiedCall) -> dict[str, Any]:
        body = body_of(call, PeerAckBody)
        return await subscriptions.answer_ack(
            uow, call.peer, sub_id=subscription_id, consumer=body.consumer, cursor=body.cursor
        )

    return await answer_signed(request, uow, work)


@router.delete("/peer-subscriptions/{subscription_id}", summary="对端平台取消其部门的订阅（签名调用）")
async def peer_cancel(request: Request, uow: UoW, subscription_id: str, consumer: Consumer) -> Response:
    async def work(call: VerifiedCall) -> dict[str, Any]:
        return await subscriptions.answer_cancel(uow, call.peer, sub_id=subscription_id, consumer=consumer)

    return await answer_signed(request, uow, work)
