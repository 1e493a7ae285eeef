"""Service-to-service calls (the outbox feed): a short-lived HS256 service token with `exp` and audience,
signed with the internal-calls purpose key (its version in the `kid` header, so that key rotates alone)."""

from __future__ import annotations

import time

import jwt
from fastapi import Request

from govshare_common.errors import Forbidden
from govshare_common.purpose_keys import Purpose, PurposeKeys, parse_label

HEADER = "x-govshare-internal"
AUDIENCE = "govshare-internal"
TOKEN_TTL_SECONDS = 60


def internal_token(keys: PurposeKeys, service: str, ttl: int = TOKEN_TTL_SECONDS) -> str:
    now = int(time.time())
    key = keys.current(Purpose.INTERNAL_CALLS)
    return jwt.encode(
        {"sub": service, "aud": AUDIENCE, "iat": now, "exp": now + ttl},
        key.key,
        algorithm="HS256",
        headers={"kid": key.label},
    )


def verify_internal(keys: PurposeKeys, token: str | None, *, leeway: float = 30.0) -> str:
    if not token:
        raise Forbidden("此接口仅供平台内部服务调用。", "This endpoint is for platform-internal callers only.")
    invalid = Forbidden("平台内部调用凭证无效或已过期。", "The internal caller credential is invalid or expired.")
    try:
        version = parse_label(jwt.get_unverified_header(token).get("kid"))
    except jwt.PyJWTError:
        raise invalid from None
    for key in keys.for_checking(Purpose.INTERNAL_CALLS, version or 0):
        try:
            # An internal credential without an expiry would be a password for ever: exp is required.
            claims = jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                leeway=leeway,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            raise invalid from None
        return str(claims["sub"])
    raise invalid


def require_internal(request: Request) -> str:
    settings = request.app.state.settings
    return verify_internal(settings.purpose_keys(), request.headers.get(HEADER), leeway=settings.token_leeway_seconds)
