"""Administrators' second factor (等保三级: two factors for administrators): TOTP (RFC 6238, `pyotp`) with
enrolment, confirmation by a first code, ten single-use recovery codes, and reset by another platform admin.

The TOTP secret is kept wrapped with the key-wrapping purpose key; recovery codes only as keyed hashes. A code
is accepted once: the time step it matched is remembered, so a code seen over someone's shoulder is spent.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyotp
from sqlalchemy import text

from govshare_common.db import UnitOfWork
from govshare_common.purpose_keys import Purpose, PurposeKeys

from gateway.keys import unwrap, wrap
from gateway.secrets_util import lookup_hashes, secret_hash

ADMIN_ROLES = frozenset({"platform_admin", "auditor", "dept_admin"})
RECOVERY_CODE_COUNT = 10
ISSUER = "govshare 政务信息资源共享交换平台"
# A code from the step before or after the current one is still taken (30 s either way: a phone's clock drifts).
VALID_WINDOW = 1


def needs_second_factor(roles: Iterable[str]) -> bool:
    return bool(ADMIN_ROLES.intersection(roles))


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class FactorState:
    confirmed: bool
    secret: str
    last_step: int
    wrapped_under_current: bool


def _associated(user_id: Any) -> str:
    return f"totp:{user_id}"


async def state(uow: UnitOfWork, keys: PurposeKeys, user_id: Any) -> FactorState | None:
    row = (
        await uow.execute(
            text("SELECT secret_wrapped, confirmed_at, last_step FROM second_factor WHERE user_id = :u FOR UPDATE"),
            {"u": user_id},
        )
    ).one_or_none()
    if row is None:
        return None
    blob = bytes(row.secret_wrapped)
    secret = unwrap(blob, keys, _associated(user_id)).decode()
    current = blob.startswith(keys.current(Purpose.KEY_WRAPPING).label.encode() + b".")
    return FactorState(row.confirmed_at is not None, secret, int(row.last_step), current)


async def start_enrolment(
    uow: UnitOfWork, keys: PurposeKeys, *, user_id: Any, username: str, now: datetime
) -> Enrolment:
    """A new secret (replacing an unconfirmed one); the caller checked that none is confirmed yet."""
    secret = pyotp.random_base32()
    await uow.execute(
        text(
            "INSERT INTO second_factor (user_id, secret_wrapped, enrolled_at) VALUES (:u, :s, :now) "
            "ON CONFLICT (user_id) DO UPDATE SET secret_wrapped = :s, enrolled_at = :now, confirmed_at = NULL, "
            "last_step = 0"
        ),
        {"u": user_id, "s": wrap(secret.encode(), keys, _associated(user_id)), "now": now},
    )
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    return Enrolment(secret, uri)


def _matching_step(secret: str, code: str, now: datetime, after_step: int) -> int | None:
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        step = current + offset
        if step > after_step and secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _is_totp_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


def _normal_recovery_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").lower()


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


async def confirm(uow: UnitOfWork, keys: PurposeKeys, *, user_id: Any, code: str, now: datetime) -> list[str] | None:
    """The first code from the authenticator confirms the enrolment; returns the recovery codes (shown once),
    or None when the code is wrong."""
    found = await state(uow, keys, user_id)
    if found is None or found.confirmed or not _is_totp_code(code):
        return None
    step = _matching_step(found.secret, code, now, found.last_step)
    if step is None:
        return None
    await uow.execute(
        text("UPDATE second_factor SET confirmed_at = :now, last_step = :step WHERE user_id = :u"),
        {"now": now, "step": step, "u": user_id},
    )
    codes = new_recovery_codes()
    await uow.execute(text("DELETE FROM recovery_code WHERE user_id = :u"), {"u": user_id})
    for c in codes:
        await uow.execute(
            text("INSERT INTO recovery_code (user_id, code_hash) VALUES (:u, :h)"),
            {"u": user_id, "h": secret_hash(_normal_recovery_code(c), keys)},
        )
    return codes


async def check(uow: UnitOfWork, keys: PurposeKeys, *, user_id: Any, code: str, now: datetime) -> str | None:
    """'totp' or 'recovery_code' when `code` is a valid, unspent second factor of a confirmed enrolment (and
    spends it); None otherwise."""
    found = await state(uow, keys, user_id)
    if found is None or not found.confirmed:
        return None
    code = code.strip()
    if _is_totp_code(code):
        step = _matching_step(found.secret, code, now, found.last_step)
        if step is None:
            return None
        await uow.execute(
            text("UPDATE second_factor SET last_step = :step WHERE user_id = :u"), {"step": step, "u": user_id}
        )
        if not found.wrapped_under_current:
            # Wrapped under an older key-wrapping key: wrap again now, so that key can be retired.
            await uow.execute(
                text("UPDATE second_factor SET secret_wrapped = :s WHERE user_id = :u"),
                {"s": wrap(found.secret.encode(), keys, _associated(user_id)), "u": user_id},
            )
        return "totp"
    spent = (
        await uow.execute(
            text(
                "UPDATE recovery_code SET used_at = :now WHERE user_id = :u AND code_hash = ANY(:h) "
                "AND used_at IS NULL RETURNING code_hash"
            ),
            {"now": now, "u": user_id, "h": lookup_hashes(_normal_recovery_code(code), keys)},
        )
    ).first()
    return "recovery_code" if spent is not None else None


async def recovery_codes_left(uow: UnitOfWork, user_id: Any) -> int:
    return int(
        (
            await uow.execute(
                text("SELECT count(*) FROM recovery_code WHERE user_id = :u AND used_at IS NULL"), {"u": user_id}
            )
        ).scalar_one()
    )


async def reset(uow: UnitOfWork, user_id: Any) -> bool:
    """Remove a user's second factor and recovery codes; True when there was one."""
    await uow.execute(text("DELETE FROM recovery_code WHERE user_id = :u"), {"u": user_id})
    gone = await uow.execute(text("DELETE FROM second_factor WHERE user_id = :u RETURNING user_id"), {"u": user_id})
    return gone.first() is not None
