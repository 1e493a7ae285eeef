"""Signing in and what it needs: the OAuth2 grants (password, client_credentials, refresh_token), password
change, and an administrator's second-factor enrolment — each counted by the credential throttle.

Every function returns either the answer or the refusal (an AppError, not raised), so the caller can commit
what a refusal must record — the failure counted — before raising it. A refusal never tells whether the
account exists: the same answer and the same work (argon2 runs for unknown names too) for unknown, locked and
wrong.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, Conflict, NotAuthenticated, TooManyRequests
from govshare_common.purpose_keys import PurposeKeys
from govshare_common.settings import Settings
from govshare_common.sharing import unfiled_use_refused

from gateway import credential_throttle as throttle
from gateway import second_factor
from gateway.events import SecondFactorChanged
from gateway.keys import KeyRing
from gateway.live_state import notify_change
from gateway.passwords import hash_password, verify_password
from gateway.secrets_util import lookup_hashes, new_secret, secret_hash, secret_matches
from gateway.tokens import ACCESS_TOKEN_TTL, issue_access_token

log = logging.getLogger("govshare.gateway.sign_in")

SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_MAX_AGE = timedelta(hours=12)
PASSWORD_MAX_AGE = timedelta(days=90)

WRONG_PASSWORD = ("用户名或密码错误。", "Wrong username or password.")


class InvalidClient(AppError):
    status = 401
    code = "invalid_client"


@dataclass
class Caller:
    """What a credential route knows about who is calling, and where it notes why it refused."""

    settings: Settings
    keys: PurposeKeys
    keyring: KeyRing
    address: str
    certificate: str | None
    access: Any  # the door's AccessContext: .reason is recorded in the access event
    filing_required: bool = False  # the profile's first_access_filing_required (003 Art.36)

    def refuse(self, reason: str, error: AppError) -> AppError:
        self.access.reason = reason
        return error


def _wrong_password() -> NotAuthenticated:
    return NotAuthenticated(*WRONG_PASSWORD)


def _held_refusal(caller: Caller, held: throttle.Held, now: datetime, wrong: AppError) -> AppError:
    if held.rule is throttle.PER_ACCOUNT_AND_ADDRESS:
        # Locked from this address: the same answer as a wrong password, so locking says nothing either.
        return caller.refuse("locked", wrong)
    wait = held.retry_after(now)
    return caller.refuse(
        f"throttled_{held.rule.kind}",
        TooManyRequests(
            "尝试次数过多，请稍后再试。",
            "Too many attempts; retry after the time in Retry-After.",
            code="too_many_attempts",
            headers={"Retry-After": throttle.retry_after_header(wait)},
            details={"retry_after_seconds": round(wait, 3)},
        ),
    )


async def _count_failure(uow: UnitOfWork, attempt: throttle.Attempt, now: datetime) -> None:
    for rule in await throttle.failed(uow, attempt, now):
        # No account name in the log line beyond what the access record holds already: the scope kind is enough.
        log.warning("credential lock started: %s rule, realm %s", rule.kind, attempt.realm)


def token_answer(caller: Caller, now: datetime, *, refresh_token: str | None = None, **claims: Any) -> dict[str, Any]:
    """A new access token for `claims`, in the OAuth2 token response shape."""
    settings = caller.settings
    access, issued = issue_access_token(
        caller.keyring, issuer=settings.token_issuer, audience=settings.token_audience, now=now, **claims
    )
    answer: dict[str, Any] = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": int(ACCESS_TOKEN_TTL.total_seconds()),
        "scope": " ".join(issued["roles"]),
    }
    if refresh_token is not None:
        answer["refresh_token"] = refresh_token
    return answer


async def _new_session(uow: UnitOfWork, keys: PurposeKeys, principal_id: Any, now: datetime) -> tuple[str, str]:
    session_id = str(uuid.uuid4())
    refresh = new_secret()
    await uow.execute(
        text(
            "INSERT INTO session (id, principal_kind, principal_id, refresh_hash, created_at, last_used_at, expires_at) "
            "VALUES (:id, 'user', :pid, :rh, :now, :now, :exp)"
        ),
        {
            "id": session_id,
            "pid": principal_id,
            "rh": secret_hash(refresh, keys),
            "now": now,
            "exp": now + SESSION_MAX_AGE,
        },
    )
    return session_id, refresh


async def _user_for_update(uow: UnitOfWork, username: str) -> Any:
    return (
        await uow.execute(
            text(
                "SELECT u.id, u.username, u.display_name, u.department_code, u.roles, u.password_hash, u.status, "
                "u.password_changed_at, u.created_at, d.status AS dept_status "
                "FROM app_user u LEFT JOIN department d ON d.code = u.department_code "
                "WHERE u.username = :u FOR UPDATE OF u"
            ),
            {"u": username},
        )
    ).one_or_none()


async def _checked_user(
    uow: UnitOfWork, caller: Caller, username: str, password: str, now: datetime
) -> tuple[Any, AppError | None]:
    """The user whose password this is, or the refusal (counted). argon2 runs whatever the outcome."""
    attempt = throttle.Attempt("user", username, caller.address)
    held = await throttle.held(uow, attempt, now)
    user = await _user_for_update(uow, username)
    matched = verify_password(user.password_hash if user is not None else None, password)
    if held is not None:
        return None, _held_refusal(caller, held, now, _wrong_password())
    if not matched:
        await _count_failure(uow, attempt, now)
        return None, caller.refuse("unknown_user" if user is None else "wrong_password", _wrong_password())
    if user.status != "active" or user.dept_status == "disabled":
        return None, caller.refuse(
            "disabled",
            NotAuthenticated(
                "账号已停用，请联系管理员。",
                "The account is disabled; contact your administrator.",
                code="account_disabled",
            ),
        )
    return user, None


async def _second_factor_refusal(
    uow: UnitOfWork, caller: Caller, user: Any, code: str | None, now: datetime
) -> AppError | None:
    """None when an administrator's second factor is satisfied (or not needed)."""
    if not second_factor.needs_second_factor(user.roles):
        return None
    found = await second_factor.state(uow, caller.keys, user.id)
    if found is None or not found.confirmed:
        deadline = user.created_at + timedelta(hours=caller.settings.second_factor_grace_hours)
        if now < deadline:
            return None
        return caller.refuse(
            "second_factor_not_enrolled",
            NotAuthenticated(
                "管理员账号须先绑定动态口令（双因素认证）才能登录，请通过 /auth/second-factor/enrol 绑定。",
                "Administrators must enrol a second factor before signing in: use /auth/second-factor/enrol.",
                code="second_factor_enrolment_required",
            ),
        )
    if not code:
        return caller.refuse(
            "second_factor_required",
            NotAuthenticated(
                "请输入动态口令（或一个恢复码）。",
                "Enter the code from your authenticator (or a recovery code).",
                code="second_factor_required",
            ),
        )
    used = await second_factor.check(uow, caller.keys, user_id=user.id, code=code, now=now)
    if used is None:
        await _count_failure(uow, throttle.Attempt("user", user.username, caller.address), now)
        return caller.refuse(
            "second_factor_wrong",
            NotAuthenticated(
                "动态口令错误或已使用。", "The code is wrong or already used.", code="second_factor_invalid"
            ),
        )
    if used == "recovery_code":
        left = await second_factor.recovery_codes_left(uow, user.id)
        log.warning("administrator signed in with a recovery code; %d left", left)
        uow.emit(
            "identity.second_factor.changed",
            str(user.id),
            SecondFactorChanged(principal_id=str(user.id), change="recovery_code_used", by=str(user.id)),
        )
    return None


async def password_grant(
    uow: UnitOfWork, caller: Caller, username: str, password: str, code: str | None
) -> dict[str, Any] | AppError:
    now = uow.clock.now()
    user, refusal = await _checked_user(uow, caller, username, password, now)
    if refusal is not None:
        return refusal
    refusal = await _second_factor_refusal(uow, caller, user, code, now)
    if refusal is not None:
        return refusal
    if user.password_changed_at + PASSWORD_MAX_AGE < now:
        return caller.refuse(
            "password_expired",
            NotAuthenticated(
                "密码已超过 90 天未更换，请先通过 /auth/password 修改密码。",
                "The password is older than 90 days; change it at /auth/password first.",
                code="password_expired",
            ),
        )
    await throttle.succeeded(uow, throttle.Attempt("user", username, caller.address))
    session_id, refresh = await _new_session(uow, caller.keys, user.id, now)
    answer = token_answer(
        caller,
        now,
        refresh_token=refresh,
        subject=str(user.id),
        kind="user",
        name=user.display_name,
        department=user.department_code,
        roles=list(user.roles),
        session_id=session_id,
    )
    if second_factor.needs_second_factor(user.roles):
        found = await second_factor.state(uow, caller.keys, user.id)
        if found is None or not found.confirmed:
            deadline = user.created_at + timedelta(hours=caller.settings.second_factor_grace_hours)
            answer["second_factor"] = {"enrolled": False, "enrol_before": deadline.isoformat()}
    return answer


async def client_grant(uow: UnitOfWork, caller: Caller, client_id: str, secret: str) -> dict[str, Any] | AppError:
    now = uow.clock.now()
    wrong = InvalidClient("客户端标识或密钥错误。", "Wrong client_id or client_secret.")
    attempt = throttle.Attempt("client", client_id, caller.address)
    held = await throttle.held(uow, attempt, now)
    if held is not None:
        return _held_refusal(caller, held, now, wrong)
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
    if client is None:
        await _count_failure(uow, attempt, now)
        return caller.refuse("unknown_client", wrong)
    previous_ok = client.previous_valid_until is not None and client.previous_valid_until > now
    if not (
        secret_matches(secret, client.secret_hash, caller.keys)
        or (previous_ok and secret_matches(secret, client.previous_secret_hash, caller.keys))
    ):
        await _count_failure(uow, attempt, now)
        return caller.refuse("wrong_secret", wrong)
    if client.status != "active" or client.dept_status == "disabled":
        return caller.refuse(
            "disabled", InvalidClient("客户端已停用。", "The client is disabled.", code="client_disabled")
        )
    if unfiled_use_refused(filing_required=caller.filing_required, filed=client.filed_at is not None):
        return caller.refuse(
            "department_not_filed",
            InvalidClient(
                "所属部门尚未完成接入备案（签署共享规则承诺书），暂不能获取令牌。",
                "The client's department has not filed its onboarding commitment yet; no tokens until it does.",
                code="department_not_filed",
            ),
        )
    if client.cert_sha256 and caller.certificate != client.cert_sha256:
        return caller.refuse(
            "certificate_mismatch",
            InvalidClient(
                "该客户端绑定了客户端证书，请使用绑定的证书连接。",
                "This client is bound to a client certificate; connect with that certificate.",
                code="certificate_required",
            ),
        )
    return token_answer(
        caller,
        now,
        subject=client.client_id,
        kind="client",
        name=client.name,
        department=client.department_code,
        roles=list(client.roles),
        client_id=client.client_id,
        cert_sha256=client.cert_sha256,
    )


async def refresh_grant(uow: UnitOfWork, caller: Caller, refresh: str) -> dict[str, Any] | AppError:
    now = uow.clock.now()
    row = (
        await uow.execute(
            text(
                "SELECT s.id, s.last_used_at, s.expires_at, s.revoked_at, u.id AS user_id, u.display_name, "
                "u.department_code, u.roles, u.status FROM session s JOIN app_user u ON u.id = s.principal_id "
                "WHERE s.refresh_hash = ANY(:h) FOR UPDATE OF s"
            ),
            {"h": lookup_hashes(refresh, caller.keys)},
        )
    ).one_or_none()
    expired = NotAuthenticated(
        "会话已过期或已注销，请重新登录。", "The session has ended; sign in again.", code="session_ended"
    )
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return caller.refuse("session_ended", expired)
    if row.last_used_at + SESSION_IDLE_TIMEOUT <= now:
        await end_session(uow, str(row.id), now)
        return caller.refuse(
            "session_idle_timeout",
            NotAuthenticated(
                "会话已超时（30 分钟无操作），请重新登录。",
                "The session timed out after 30 idle minutes; sign in again.",
                code="session_timeout",
            ),
        )
    if row.status != "active":
        return caller.refuse("disabled", expired)
    new_refresh = new_secret()
    await uow.execute(
        text("UPDATE session SET refresh_hash = :h, last_used_at = :now WHERE id = :id"),
        {"h": secret_hash(new_refresh, caller.keys), "now": now, "id": row.id},
    )
    return token_answer(
        caller,
        now,
        refresh_token=new_refresh,
        subject=str(row.user_id),
        kind="user",
        name=row.display_name,
        department=row.department_code,
        roles=list(row.roles),
        session_id=str(row.id),
    )


async def end_session(uow: UnitOfWork, session_id: str, now: datetime) -> None:
    await uow.execute(
        text("UPDATE session SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL"),
        {"now": now, "id": session_id},
    )
    await notify_change(uow.conn, "session", session_id)


async def change_password(
    uow: UnitOfWork, caller: Caller, username: str, old_password: str, new_password: str
) -> dict[str, Any] | AppError:
    now = uow.clock.now()
    user, refusal = await _checked_user(uow, caller, username, old_password, now)
    if refusal is not None:
        if isinstance(refusal, NotAuthenticated) and refusal.code == "account_disabled":
            return caller.refuse("disabled", _wrong_password())
        return refusal
    await throttle.succeeded(uow, throttle.Attempt("user", username, caller.address))
    await uow.execute(
        text("UPDATE app_user SET password_hash = :h, password_changed_at = :now WHERE id = :id"),
        {"h": hash_password(new_password), "now": now, "id": user.id},
    )
    return {"changed": True}


async def start_enrolment(uow: UnitOfWork, caller: Caller, username: str, password: str) -> dict[str, Any] | AppError:
    """An administrator, by password, starts binding an authenticator: the secret and otpauth URI, shown once."""
    now = uow.clock.now()
    user, refusal = await _checked_user(uow, caller, username, password, now)
    if refusal is not None:
        return refusal
    found = await second_factor.state(uow, caller.keys, user.id)
    if found is not None and found.confirmed:
        return caller.refuse(
            "second_factor_already_enrolled",
            Conflict(
                "已绑定动态口令；如需更换，请联系另一位平台管理员重置。",
                "A second factor is already enrolled; another platform admin must reset it first.",
                code="second_factor_already_enrolled",
            ),
        )
    enrolment = await second_factor.start_enrolment(uow, caller.keys, user_id=user.id, username=user.username, now=now)
    uow.emit(
        "identity.second_factor.changed",
        str(user.id),
        SecondFactorChanged(principal_id=str(user.id), change="enrolment_started", by=str(user.id)),
    )
    return {
        "secret": enrolment.secret,
        "otpauth_uri": enrolment.otpauth_uri,
        "notice": "密钥只显示这一次：用身份验证器扫描后，提交第一个动态口令完成绑定。/ Shown once: add it to an "
        "authenticator, then confirm with its first code.",
    }


async def confirm_enrolment(
    uow: UnitOfWork, caller: Caller, username: str, password: str, code: str
) -> dict[str, Any] | AppError:
    now = uow.clock.now()
    user, refusal = await _checked_user(uow, caller, username, password, now)
    if refusal is not None:
        return refusal
    codes = await second_factor.confirm(uow, caller.keys, user_id=user.id, code=code.strip(), now=now)
    if codes is None:
        await _count_failure(uow, throttle.Attempt("user", username, caller.address), now)
        return caller.refuse(
            "second_factor_wrong",
            NotAuthenticated(
                "动态口令错误，或没有待确认的绑定。",
                "The code is wrong, or there is no enrolment waiting for confirmation.",
                code="second_factor_invalid",
            ),
        )
    uow.emit(
        "identity.second_factor.changed",
        str(user.id),
        SecondFactorChanged(principal_id=str(user.id), change="enrolled", by=str(user.id)),
    )
    return {
        "enrolled": True,
        "recovery_codes": codes,
        "notice": "恢复码只显示这一次，每个只能使用一次，请妥善保存。/ Recovery codes are shown once; each works once.",
    }
