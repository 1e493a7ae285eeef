"""Service-to-service calls (the outbox feed): a short-lived HS256 token from the platform's internal secret."""

from __future__ import annotations

import time

import jwt
from fastapi import Request

from govshare_common.errors import Forbidden

HEADER = "x-govshare-internal"
_AUDIENCE = "govshare-internal"


def internal_token(secret: str, service: str, ttl: int = 60) -> str:
    now = int(time.time())
    return jwt.encode({"sub": service, "aud": _AUDIENCE, "iat": now, "exp": now + ttl}, secret, algorithm="HS256")


def verify_internal(secret: str, token: str | None) -> str:
    if not token:
        raise Forbidden("此接口仅供平台内部服务调用。", "This endpoint is for platform-internal callers only.")
    try:
        # An internal credential without an expiry would be a password for ever: exp is required.
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], audience=_AUDIENCE, options={"require": ["exp", "sub", "aud"]}
        )
    except jwt.PyJWTError:
        raise Forbidden(
            "平台内部调用凭证无效或已过期。", "The internal caller credential is invalid or expired."
        ) from None
    return str(claims["sub"])


def require_internal(request: Request) -> str:
    secret = request.app.state.settings.internal_secret.get_secret_value()
    return verify_internal(secret, request.headers.get(HEADER))
