"""How this service answers a peer platform's signed call: verified against the peer register, the work done in
a savepoint (a refusal leaves nothing of it; the call's nonce is kept), the answer or refusal signed for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError

from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError
from govshare_common.peer_guard import VerifiedCall, identity_of, refusal, signed_json, verify_by_register

Body = TypeVar("Body", bound=BaseModel)


async def answer_signed(
    request: Request, uow: UnitOfWork, work: Callable[[VerifiedCall], Awaitable[dict[str, Any]]]
) -> Response:
    me = identity_of(request)
    call = await verify_by_register(uow, request, relations=("parent", "child"))
    try:
        async with uow.conn.begin_nested():
            status, answer = 200, await work(call)
    except AppError as exc:
        status, answer = refusal(request, exc)
    return signed_json(me, call, status, answer, now=uow.clock.now())


def body_of(call: VerifiedCall, model: type[Body]) -> Body:
    """The signed body, checked like any request body (in the error shape, signed, when it is not well formed)."""
    try:
        return model.model_validate_json(call.body or b"{}")
    except ValidationError as exc:
        raise AppError(
            "对端平台的请求内容不正确。",
            "The peer's request body is not well formed.",
            code="validation_failed",
            status=422,
            details={"fields": [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]},
        ) from None
