"""Cross-level share requests from peer platforms (issue 16 item 4): a request forwarded here, and a report on a
request this platform forwarded. The RFC 9421 signature of a registered peer is these routes' authentication
(`govshare_common.peer_guard`); every answer, refusals too, is signed for the call it answers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from govshare_common.db import UnitOfWork
from govshare_common.error_handlers import error_body
from govshare_common.errors import AppError, ValidationFailed
from govshare_common.peer_guard import VerifiedCall, signed_answer_headers, verify_peer_call
from govshare_common.platform_identity import PlatformIdentity
from govshare_common.service import UoW

from request_svc.federation import forwarding, receiving
from request_svc.federation import store as fed_store
from request_svc.routes.common import Calendar, CurrentProfile

router = APIRouter(prefix="/api/v1/requests/federation", tags=["cross-level requests"])


def _me(request: Request) -> PlatformIdentity:
    me: PlatformIdentity | None = request.app.state.federation_identity
    if me is None:
        raise AppError(
            "本平台尚未配置平台身份，不接受对端平台的调用。",
            "This platform has no identity configured; it takes no peer calls.",
            code="federation_not_configured",
            status=409,
        )
    return me


async def _verified(uow: UnitOfWork, request: Request) -> VerifiedCall:
    now = uow.clock.now()

    async def lookup(keyid: str) -> dict[str, Any] | None:
        return await fed_store.peer(uow.conn, keyid)

    async def remember(keyid: str, nonce: str) -> bool:
        return await fed_store.remember_nonce(uow.conn, keyid, nonce, now=now)

    return await verify_peer_call(
        request,
        public_url=request.app.state.settings.federation_public_url,
        lookup=lookup,
        remember_nonce=remember,
        now=now,
        relations=("parent", "child"),  # a request travels both ways along the tree
    )


def _body(call: VerifiedCall) -> dict[str, Any]:
    try:
        body = json.loads(call.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValidationFailed("消息体须为 JSON 对象。", "The body must be a JSON object.")
    return body


def _answer(
    request: Request, uow: UnitOfWork, me: PlatformIdentity, call: VerifiedCall, status: int, answer: dict[str, Any]
) -> Response:
    content = json.dumps(answer, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    headers = signed_answer_headers(me, call, status=status, body=content, now=uow.clock.now())
    if status >= 400:
        headers["X-Govshare-Reason"] = str(answer.get("code", ""))
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def _refusal(request: Request, exc: AppError) -> tuple[int, dict[str, Any]]:
    return exc.status, error_body(request, exc.code, exc.message_zh, exc.message_en, exc.details)


@router.post("/forwarded", status_code=201, summary="对端平台转送的共享申请（签名调用）")
async def forwarded(uow: UoW, request: Request, cal: Calendar, prof: CurrentProfile) -> Response:
    me = _me(request)
    call = await _verified(uow, request)
    try:
        status, answer = await receiving.receive(
            uow, call, _body(call), me=me.division_code, calendar=cal, profile=prof
        )
    except AppError as exc:
        # Refused, signed like any answer; the savepoint left nothing of it, the nonce is kept.
        status, answer = _refusal(request, exc)
    return _answer(request, uow, me, call, status, answer)


@router.post("/status", summary="对端平台报告已转送申请的办理状态（签名调用）")
async def status_report(uow: UoW, request: Request) -> Response:
    me = _me(request)
    call = await _verified(uow, request)
    try:
        async with uow.conn.begin_nested():
            changed = await forwarding.apply_report(uow, call.peer["division_code"], _body(call))
        status, answer = 200, {"applied": changed}
    except AppError as exc:
        status, answer = _refusal(request, exc)
    except (KeyError, ValueError, TypeError) as exc:
        status, answer = _refusal(
            request, ValidationFailed("状态报告格式不正确。", f"The report is not well formed: {exc}")
        )
    return _answer(request, uow, me, call, status, answer)
