"""Cross-level online query (issue 16 item 5): a department's query of another platform's resource, asked of
its owner; and a peer platform's signed query for one of its departments, answered by the grant it holds here —
or, for a resource owned further on, relayed to the next hop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from govshare_common.errors import AppError
from govshare_common.peer_guard import identity_of, refusal, signed_json, verify_by_register
from govshare_common.service import UoW

from exchange_svc import cross_level
from exchange_svc.routes.common import PREFIX, DataReader, Purpose, Sealing, hash_key

router = APIRouter(prefix=f"{PREFIX}/federation", tags=["cross-level query"])

Subjects = Annotated[list[str] | None, Query(max_length=1000, description="身份标识（公民身份号码/统一社会信用代码）")]
Keys = Annotated[list[str] | None, Query(max_length=1000, description="记录主键")]


@router.get("/records/{code:path}", summary="跨平台联机查询：向信息资源所属平台查询（按其授权脱敏）")
async def records_elsewhere(
    request: Request,
    uow: UoW,
    code: str,
    principal: DataReader,
    purpose: Purpose = None,
    subject: Subjects = None,
    key: Keys = None,
) -> dict[str, Any]:
    return await cross_level.ask_owner(
        uow,
        principal,
        getattr(request.app.state, "peer_client", None),
        code=code,
        purpose=purpose,
        subjects=subject or [],
        keys=key or [],
        hash_key=hash_key(request),
    )


@router.get("/peer-records", summary="对端平台为其部门查询本平台信息资源（签名调用）")
async def peer_records(
    request: Request,
    uow: UoW,
    sealer: Sealing,
    resource: Annotated[str, Query(min_length=1, max_length=64)],
    consumer: Annotated[str, Query(min_length=1, max_length=18, description="对端平台部门的统一社会信用代码")],
    principal: Annotated[str, Query(max_length=200)] = "",
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    origin: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="信息资源所属平台（行政区划代码）")] = None,
    consumer_platform: Annotated[
        str | None, Query(pattern=r"^[0-9]{6}$", description="经转发时：查询部门所属平台")
    ] = None,
    subject: Subjects = None,
    key: Keys = None,
) -> Response:
    me = identity_of(request)
    call = await verify_by_register(uow, request, relations=("parent", "child"))
    try:
        async with uow.conn.begin_nested():
            if origin is not None and origin != me.division_code:
                # Owned elsewhere: relayed towards its owner (this platform is between).
                served = await cross_level.relay(
                    uow,
                    call.peer,
                    getattr(request.app.state, "peer_client", None),
                    origin=origin,
                    resource=resource,
                    consumer=consumer,
                    asker=principal,
                    consumer_platform=consumer_platform,
                    purpose=purpose,
                    subjects=subject or [],
                    keys=key or [],
                    hash_key=hash_key(request),
                )
            else:
                served = await cross_level.answer_peer(
                    uow,
                    call.peer,
                    resource=resource,
                    consumer=consumer,
                    asker=principal,
                    consumer_platform=consumer_platform,
                    purpose=purpose,
                    subjects=subject or [],
                    keys=key or [],
                    hash_key=hash_key(request),
                    sealer=sealer,
                )
            status, answer = 200, served
    except AppError as exc:
        status, answer = refusal(request, exc)
    return signed_json(me, call, status, answer, now=uow.clock.now())
