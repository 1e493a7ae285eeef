"""The gateway's own HTTP surface: token issuing and the public key set."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import text

from govshare_common.errors import AppError, NotAuthenticated, ValidationFailed
from govshare_common.db import UnitOfWork

from gateway.passwords import verify_password
from gateway.tokens import ACCESS_TOKEN_TTL, issue_access_token

log = logging.getLogger("govshare.gateway.auth")

router = APIRouter()

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


@router.get("/.well-known/jwks.json", tags=["auth"], summary="令牌验证公钥集")
async def jwks(request: Request) -> dict[str, Any]:
    return request.app.state.keyring.jwks()


class InvalidGrant(AppError):
    status = 400
    code = "invalid_grant"


@router.post("/auth/token", tags=["auth"], summary="获取访问令牌（OAuth2）")
async def token(
    request: Request,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    if grant_type != "password":
        raise ValidationFailed(
            "不支持的授权类型。", "Unsupported grant_type.", details={"fields": [{"field": "grant_type"}]}
        )
    if not username or not password:
        raise ValidationFailed(
            "请提供用户名和密码。", "Send username and password.", details={"fields": [{"field": "username"}]}
        )
    # Its own unit of work: a failed attempt must be counted (committed) even though the answer is a refusal.
    async with request.app.state.db.unit_of_work() as uow:
        outcome = await _check_password(uow, username, password)
    if isinstance(outcome, AppError):
        raise outcome
    settings = request.app.state.settings
    access, claims = issue_access_token(
        request.app.state.keyring,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        now=request.app.state.clock.now(),
        subject=str(outcome.id),
        kind="user",
        name=outcome.display_name,
        department=outcome.department_code,
        roles=list(outcome.roles),
    )
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(ACCESS_TOKEN_TTL.total_seconds()),
        "scope": " ".join(claims["roles"]),
    }


async def _check_password(uow: UnitOfWork, username: str, password: str) -> Any:
    """The user row when the password is right; otherwise the refusal to give (after counting the failure)."""
    wrong = NotAuthenticated("用户名或密码错误。", "Wrong username or password.")
    now = uow.clock.now()
    user = (
        await uow.execute(
            text(
                "SELECT id, username, display_name, department_code, roles, password_hash, status, "
                "failed_logins, locked_until FROM app_user WHERE username = :u FOR UPDATE"
            ),
            {"u": username},
        )
    ).one_or_none()
    if user is None:
        log.warning("login refused: unknown user")
        return wrong
    if user.locked_until is not None and user.locked_until > now:
        log.warning("login refused: %s is locked", user.username)
        return NotAuthenticated(
            "连续登录失败次数过多，账号已锁定 15 分钟，请稍后再试。",
            "Too many failed logins: the account is locked for 15 minutes.",
            code="account_locked",
            details={"locked_until": user.locked_until.isoformat()},
        )
    if user.status != "active":
        log.warning("login refused: %s is disabled", user.username)
        return NotAuthenticated("账号已停用，请联系管理员。", "The account is disabled; contact your administrator.")
    if not verify_password(user.password_hash, password):
        failed = user.failed_logins + 1
        locked_until = now + LOCKOUT if failed >= MAX_FAILED_LOGINS else None
        await uow.execute(
            text("UPDATE app_user SET failed_logins = :f, locked_until = :l WHERE id = :id"),
            {"f": 0 if locked_until else failed, "l": locked_until, "id": user.id},
        )
        log.warning("login refused: wrong password for %s (%d/%d)", user.username, failed, MAX_FAILED_LOGINS)
        return wrong
    await uow.execute(
        text("UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE id = :id"), {"id": user.id}
    )
    return user
