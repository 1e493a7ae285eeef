"""HTTP of signing in: /auth/token (password with an administrator's second factor, client_credentials,
refresh_token), logout, password change, second-factor enrolment, JWKS. The work is in gateway.sign_in."""

from __future__ import annotations

import base64
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request

from govshare_common.auth import CurrentPrincipal
from govshare_common.errors import AppError, ValidationFailed, field_error
from govshare_common.platform_identity import WELL_KNOWN_PATH, configured_identity

from gateway import sign_in
from gateway.passwords import complexity_problems
from gateway.sign_in import Caller, InvalidClient

log = logging.getLogger("govshare.gateway.auth")

router = APIRouter(tags=["auth"])


@router.get("/.well-known/jwks.json", summary="令牌验证公钥集")
async def jwks(request: Request) -> dict[str, Any]:
    return request.app.state.keyring.jwks()


@router.get(WELL_KNOWN_PATH, summary="本平台身份：行政区划代码、层级、名称与平台间签名公钥")
async def platform_identity(request: Request) -> dict[str, Any]:
    """Anonymous, like the JWKS: what a peer platform's office registers to federate with this one."""
    found = configured_identity(request.app.state.settings, request.app.state.profile)
    if found is None:
        raise AppError(
            "本平台尚未配置平台身份（GOVSHARE_PLATFORM_DIVISION_CODE），不与其他平台级联。",
            "This platform has no identity configured (GOVSHARE_PLATFORM_DIVISION_CODE) and federates with no one.",
            code="federation_not_configured",
            status=404,
        )
    return found.published()


def presented_certificate(request: Request) -> str | None:
    """The fingerprint of the TLS client certificate, as the trusted terminator in front reports it."""
    settings = request.app.state.settings
    peer = request.client.host if request.client else None
    if peer not in settings.trusted_proxies:
        return None
    value = request.headers.get(settings.client_cert_header)
    return value.lower() if value else None


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None, None
    return client_id, secret


@router.post("/auth/token", summary="获取访问令牌（OAuth2）")
async def token(
    request: Request,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    otp: Annotated[str | None, Form(max_length=32, description="管理员的动态口令或恢复码")] = None,
) -> dict[str, Any]:
    # Each grant runs in its own unit of work so that a refusal can still commit what it must record
    # (a failed login counts towards lockout); the refusal is raised after the commit.
    db = request.app.state.db
    if grant_type == "password":
        if not username or not password:
            raise ValidationFailed(
                "请提供用户名和密码。",
                "Send username and password.",
                details={"fields": [field_error("username", "必填", "required")]},
            )
        async with db.unit_of_work() as uow:
            outcome = await sign_in.password_grant(uow, _caller(request), username, password, otp)
    elif grant_type == "client_credentials":
        basic_id, basic_secret = _basic_credentials(request)
        cid, secret = client_id or basic_id, client_secret or basic_secret
        if not cid or not secret:
            raise InvalidClient("请提供 client_id 和 client_secret。", "Send client_id and client_secret.")
        async with db.unit_of_work() as uow:
            outcome = await sign_in.client_grant(uow, _caller(request), cid, secret)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise ValidationFailed(
                "请提供 refresh_token。",
                "Send refresh_token.",
                details={"fields": [field_error("refresh_token", "必填", "required")]},
            )
        async with db.unit_of_work() as uow:
            outcome = await sign_in.refresh_grant(uow, _caller(request), refresh_token)
    else:
        raise ValidationFailed(
            "不支持的授权类型（可用：password、client_credentials、refresh_token）。",
            "Unsupported grant_type (password, client_credentials, refresh_token).",
            details={"fields": [field_error("grant_type", "不支持", "unsupported")]},
        )
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


def _caller(request: Request) -> Caller:
    state = request.app.state
    return Caller(
        settings=state.settings,
        keys=state.settings.purpose_keys(),
        keyring=state.keyring,
        address=caller_address(request),
        certificate=presented_certificate(request),
        access=request.state.access,
        filing_required=state.profile.first_access_filing_required,
    )


def caller_address(request: Request) -> str:
    """The address a credential attempt came from: the peer, or — when the peer is the trusted terminator in
    front — the address it saw (the last X-Forwarded-For entry, the one it appended)."""
    peer = request.client.host if request.client else ""
    if peer in request.app.state.settings.trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last and len(last) <= 64:
            return last
    return peer


@router.post("/auth/logout", summary="注销当前会话")
async def logout(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    if not principal.session_id:
        raise ValidationFailed("机器客户端令牌没有会话可注销。", "Client tokens have no session to end.")
    async with request.app.state.db.unit_of_work() as uow:
        await sign_in.end_session(uow, principal.session_id, uow.clock.now())
        uow.emit(
            "identity.session.revoked",
            principal.subject,
            {"session_id": principal.session_id, "principal_id": principal.subject, "reason": "logout"},
        )
    return {"session_id": principal.session_id, "ended": True}


@router.post("/auth/password", summary="修改密码")
async def change_password(
    request: Request,
    username: Annotated[str, Form()],
    old_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
) -> dict[str, Any]:
    problems = complexity_problems(new_password)
    if new_password == old_password:
        problems.append("新密码不能与旧密码相同")
    if problems:
        raise ValidationFailed(
            "新密码不符合要求：" + "；".join(problems) + "。",
            "The new password does not meet the rules.",
            details={"fields": [field_error("new_password", "；".join(problems), "too weak")]},
        )
    async with request.app.state.db.unit_of_work() as uow:
        outcome = await sign_in.change_password(uow, _caller(request), username, old_password, new_password)
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


@router.post("/auth/second-factor/enrol", summary="管理员绑定动态口令：生成密钥（只显示一次）")
async def enrol_second_factor(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> dict[str, Any]:
    async with request.app.state.db.unit_of_work() as uow:
        outcome = await sign_in.start_enrolment(uow, _caller(request), username, password)
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


@router.post("/auth/second-factor/confirm", summary="管理员绑定动态口令：以第一个口令确认，领取恢复码")
async def confirm_second_factor(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    otp: Annotated[str, Form(max_length=32)],
) -> dict[str, Any]:
    async with request.app.state.db.unit_of_work() as uow:
        outcome = await sign_in.confirm_enrolment(uow, _caller(request), username, password, otp)
    if isinstance(outcome, AppError):
        raise outcome
    return outcome
