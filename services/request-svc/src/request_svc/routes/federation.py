"""Cross-level share requests from peer platforms (issue 16 item 4): a request forwarded here, and a report on a
request this platform forwarded. The RFC 9421 signature of a registered peer is these routes' authentication
(`govshare_common.peer_guard`); every answer, refusals too, is signed for the call it answers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from govshare_common.errors import AppError, ValidationFailed
from govshare_common.peer_guard import VerifiedCall, identity_of, refusal, signed_json, verify_by_register
from govshare_common.service import UoW

from request_svc.federation import forwarding, receiving
from request_svc.routes.common import Calendar, CurrentProfile

router = APIRouter(prefix="/api/v1/requests/federation", tags=["cross-level requests"])

# A request travels both ways along the tree: from a child and from a parent.
RELATIONS = ("parent", "child")


def _body(call: VerifiedCall) -> dict[str, Any]:
    try:
        body = json.loads(call.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValidationFailed("消息体须为 JSON 对象。", "The body must be a JSON object.")
    return body


@router.post("/forwarded", status_code=201, summary="对端平台转送的共享申请（签名调用）")
async def forwarded(uow: UoW, request: Request, cal: Calendar, prof: CurrentProfile) -> Response:
    me = identity_of(request)
    call = await verify_by_register(uow, request, relations=RELATIONS)
    try:
        status, answer = await receiving.receive(
            uow, call, _body(call), me=me.division_code, calendar=cal, profile=prof
        )
    except AppError as exc:
        # Refused, signed like any answer; the savepoint left nothing of it, the nonce is kept.
        status, answer = refusal(request, exc)
    return signed_json(me, call, status, answer, now=uow.clock.now())


@router.post("/status", summary="对端平台报告已转送申请的办理状态（签名调用）")
async def status_report(uow: UoW, request: Request) -> Response:
    me = identity_of(request)
    call = await verify_by_register(uow, request, relations=RELATIONS)
    try:
        async with uow.conn.begin_nested():
            changed = await forwarding.apply_report(uow, call.peer["division_code"], _body(call))
        status, answer = 200, {"applied": changed}
    except AppError as exc:
        status, answer = refusal(request, exc)
    except (KeyError, ValueError, TypeError) as exc:
        status, answer = refusal(
            request, ValidationFailed("状态报告格式不正确。", f"The report is not well formed: {exc}")
        )
    return signed_json(me, call, status, answer, now=uow.clock.now())
