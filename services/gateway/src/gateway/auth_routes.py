"""Token issuing (OAuth2: password, client_credentials, refresh_token), logout, password change, JWKS."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import text

from govshare_common.auth import CurrentPrincipal
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, NotAuthenticated, ValidationFailed, field_error

from gateway.live_state import notify_change
from gateway.passwords import complexity_problems, hash_password, verify_password
from gateway.secrets_util import new_secret, secret_hash, secret_matches
from gateway.tokens import ACCESS_TOKEN_TTL, issue_access_token

log = logging.getLogger("govshare.gateway.auth")

router = APIRouter(tags=["auth"])

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_MAX_AGE = timedelta(hours=12)
PASSWORD_MAX_AGE = timedelta(days=90)

WRONG_PASSWORD = ("用户名或密码错误。", "Wrong username or password.")


class InvalidClient(AppError):
    status = 401
    code = "invalid_client"


@router.get("/.well-known/jwks.json", summary="令牌验证公钥集")
async def jwks(request: Request) -> dict[str, Any]:
    return request.app.state.keyring.jwks()


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
            outcome = await _password_grant(request, uow, username, password)
    elif grant_type == "client_credentials":
        basic_id, basic_secret = _basic_credentials(request)
        cid, secret = client_id or basic_id, client_secret or basic_secret
        if not cid or not secret:
            raise InvalidClient("请提供 client_id 和 client_secret。", "Send client_id and client_secret.")
        async with db.unit_of_work() as uow:
            outcome = await _client_grant(request, uow, cid, secret)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise ValidationFailed(
                "请提供 refresh_token。",
                "Send refresh_token.",
                details={"fields": [field_error("refresh_token", "必填", "required")]},
            )
        async with db.unit_of_work() as uow:
            outcome = await _refresh_grant(request, uow, refresh_token)
    else:
        raise ValidationFailed(
            "不支持的授权类型（可用：password、client_credentials、refresh_token）。",
            "Unsupported grant_type (password, client_credentials, refresh_token).",
            details={"fields": [field_error("grant_type", "不支持", "unsupported")]},
        )
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


def _pepper(request: Request) -> bytes:
    return request.app.state.settings.hash_key()


def _token_response(
    request: Request, now: datetime, *, refresh_token: str | None = None, **claims: Any
) -> dict[str, Any]:
    """A new access token for `claims`, in the OAuth2 token response shape."""
    settings = request.app.state.settings
    access, issued = issue_access_token(
        request.app.state.keyring, issuer=settings.token_issuer, audience=settings.token_audience, now=now, **claims
    )
    response: dict[str, Any] = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(ACCESS_TOKEN_TTL.total_seconds()),
        "scope": " ".join(issued["roles"]),
    }
    if refresh_token is not None:
        response["refresh_token"] = refresh_token
    return response


async def _new_session(uow: UnitOfWork, kind: str, principal_id: Any, now: datetime, pepper: bytes) -> tuple[str, str]:
    session_id = str(uuid.uuid4())
    refresh = new_secret()
    await uow.execute(
        text(
            "INSERT INTO session (id, principal_kind, principal_id, refresh_hash, created_at, last_used_at, expires_at) "
            "VALUES (:id, :kind, :pid, :rh, :now, :now, :exp)"
        ),
        {
            "id": session_id,
            "kind": kind,
            "pid": principal_id,
            "rh": secret_hash(refresh, pepper),
            "now": now,
            "exp": now + SESSION_MAX_AGE,
        },
    )
    return session_id, refresh


async def _password_grant(request: Request, uow: UnitOfWork, username: str, password: str) -> Any:
    now = uow.clock.now()
    user = (
        await uow.execute(
            text(
                "SELECT u.id, u.username, u.display_name, u.department_code, u.roles, u.password_hash, u.status, "
                "u.failed_logins, u.locked_until, u.password_changed_at, d.status AS dept_status "
                "FROM app_user u LEFT JOIN department d ON d.code = u.department_code WHERE u.username = :u FOR UPDATE OF u"
            ),
            {"u": username},
        )
    ).one_or_none()
    if user is None:
        request.state.access.reason = "unknown_user"
        return NotAuthenticated(*WRONG_PASSWORD)
    if user.locked_until is not None and user.locked_until > now:
        request.state.access.reason = "locked"
        return NotAuthenticated(
            "连续登录失败次数过多，账号已锁定 15 分钟，请稍后再试。",
            "Too many failed logins: the account is locked for 15 minutes.",
            code="account_locked",
            details={"locked_until": user.locked_until.isoformat()},
        )
    if user.status != "active" or user.dept_status == "disabled":
        request.state.access.reason = "disabled"
        return NotAuthenticated(
            "账号已停用，请联系管理员。",
            "The account is disabled; contact your administrator.",
            code="account_disabled",
        )
    if not verify_password(user.password_hash, password):
        failed = user.failed_logins + 1
        locked_until = now + LOCKOUT if failed >= MAX_FAILED_LOGINS else None
        await uow.execute(
            text("UPDATE app_user SET failed_logins = :f, locked_until = :l WHERE id = :id"),
            {"f": 0 if locked_until else failed, "l": locked_until, "id": user.id},
        )
        request.state.access.reason = "wrong_password"
        return NotAuthenticated(*WRONG_PASSWORD)
    if user.password_changed_at + PASSWORD_MAX_AGE < now:
        request.state.access.reason = "password_expired"
        return NotAuthenticated(
            "密码已超过 90 天未更换，请先通过 /auth/password 修改密码。",
            "The password is older than 90 days; change it at /auth/password first.",
            code="password_expired",
        )
    await uow.execute(
        text("UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE id = :id"), {"id": user.id}
    )
    session_id, refresh = await _new_session(uow, "user", user.id, now, _pepper(request))
    return _token_response(
        request,
        now,
        refresh_token=refresh,
        subject=str(user.id),
        kind="user",
        name=user.display_name,
        department=user.department_code,
        roles=list(user.roles),
        session_id=session_id,
    )


async def _client_grant(request: Request, uow: UnitOfWork, client_id: str, secret: str) -> Any:
    now = uow.clock.now()
    client = (
        await uow.execute(
            text(
                "SELECT c.id, c.client_id, c.name, c.department_code, c.roles, c.secret_hash, c.previous_secret_hash, "
                "c.previous_valid_until, c.status, c.cert_sha256, d.status AS dept_status, d.filed_at "
                "FROM client c JOIN department d ON d.code = c.department_code WHERE c.client_id = :cid"
            ),
            {"cid": client_id},
        )
    ).one_or_none()
    pepper = _pepper(request)
    wrong = InvalidClient("客户端标识或密钥错误。", "Wrong client_id or client_secret.")
    if client is None:
        request.state.access.reason = "unknown_client"
        return wrong
    previous_ok = client.previous_valid_until is not None and client.previous_valid_until > now
    if not (
        secret_matches(secret, client.secret_hash, pepper)
        or (previous_ok and secret_matches(secret, client.previous_secret_hash, pepper))
    ):
        request.state.access.reason = "wrong_secret"
        return wrong
    if client.status != "active" or client.dept_status == "disabled":
        request.state.access.reason = "disabled"
        return InvalidClient("客户端已停用。", "The client is disabled.", code="client_disabled")
    if client.filed_at is None:
        request.state.access.reason = "department_not_filed"
        return InvalidClient(
            "所属部门尚未完成接入备案（签署共享规则承诺书），暂不能获取令牌。",
            "The client's department has not filed its onboarding commitment yet; no tokens until it does.",
            code="department_not_filed",
        )
    if client.cert_sha256 and presented_certificate(request) != client.cert_sha256:
        request.state.access.reason = "certificate_mismatch"
        return InvalidClient(
            "该客户端绑定了客户端证书，请使用绑定的证书连接。",
            "This client is bound to a client certificate; connect with that certificate.",
            code="certificate_required",
        )
    return _token_response(
        request,
        now,
        subject=client.client_id,
        kind="client",
        name=client.name,
        department=client.department_code,
        roles=list(client.roles),
        client_id=client.client_id,
        cert_sha256=client.cert_sha256,
    )


async def _refresh_grant(request: Request, uow: UnitOfWork, refresh: str) -> Any:
    now = uow.clock.now()
    pepper = _pepper(request)
    row = (
        await uow.execute(
            text(
                "SELECT s.id, s.last_used_at, s.expires_at, s.revoked_at, u.id AS user_id, u.display_name, "
                "u.department_code, u.roles, u.status FROM session s JOIN app_user u ON u.id = s.principal_id "
                "WHERE s.refresh_hash = :h FOR UPDATE OF s"
            ),
            {"h": secret_hash(refresh, pepper)},
        )
    ).one_or_none()
    expired = NotAuthenticated(
        "会话已过期或已注销，请重新登录。", "The session has ended; sign in again.", code="session_ended"
    )
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        request.state.access.reason = "session_ended"
        return expired
    if row.last_used_at + SESSION_IDLE_TIMEOUT <= now:
        await uow.execute(text("UPDATE session SET revoked_at = :now WHERE id = :id"), {"now": now, "id": row.id})
        await notify_change(uow.conn, "session", str(row.id))
        request.state.access.reason = "session_idle_timeout"
        return NotAuthenticated(
            "会话已超时（30 分钟无操作），请重新登录。",
            "The session timed out after 30 idle minutes; sign in again.",
            code="session_timeout",
        )
    if row.status != "active":
        request.state.access.reason = "disabled"
        return expired
    new_refresh = new_secret()
    await uow.execute(
        text("UPDATE session SET refresh_hash = :h, last_used_at = :now WHERE id = :id"),
        {"h": secret_hash(new_refresh, pepper), "now": now, "id": row.id},
    )
    return _token_response(
        request,
        now,
        refresh_token=new_refresh,
        subject=str(row.user_id),
        kind="user",
        name=row.display_name,
        department=row.department_code,
        roles=list(row.roles),
        session_id=str(row.id),
    )


@router.post("/auth/logout", summary="注销当前会话")
async def logout(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    if not principal.session_id:
        raise ValidationFailed("机器客户端令牌没有会话可注销。", "Client tokens have no session to end.")
    async with request.app.state.db.unit_of_work() as uow:
        await uow.execute(
            text("UPDATE session SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL"),
            {"now": uow.clock.now(), "id": principal.session_id},
        )
        await notify_change(uow.conn, "session", principal.session_id)
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
        user = (
            await uow.execute(
                text("SELECT id, password_hash, status, locked_until FROM app_user WHERE username = :u FOR UPDATE"),
                {"u": username},
            )
        ).one_or_none()
        now = uow.clock.now()
        if user is None or user.status != "active" or (user.locked_until and user.locked_until > now):
            outcome: Any = NotAuthenticated(*WRONG_PASSWORD)
        elif not verify_password(user.password_hash, old_password):
            outcome = NotAuthenticated(*WRONG_PASSWORD)
        else:
            await uow.execute(
                text(
                    "UPDATE app_user SET password_hash = :h, password_changed_at = :now, failed_logins = 0 WHERE id = :id"
                ),
                {"h": hash_password(new_password), "now": now, "id": user.id},
            )
            outcome = {"changed": True}
    if isinstance(outcome, AppError):
        request.state.access.reason = "wrong_password"
        raise outcome
    return outcome
