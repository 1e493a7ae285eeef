"""Issuing and checking the platform's access tokens (short-lived JWTs signed by the key ring)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt

from govshare_common.auth import Principal, TokenVerifier
from govshare_common.errors import NotAuthenticated

from gateway.keys import ALGORITHM, KeyRing
from gateway.live_state import LiveState

ACCESS_TOKEN_TTL = timedelta(minutes=5)


def issue_access_token(
    ring: KeyRing,
    *,
    issuer: str,
    audience: str,
    now: datetime,
    subject: str,
    kind: str,
    name: str,
    department: str | None,
    roles: list[str],
    client_id: str | None = None,
    session_id: str | None = None,
    cert_sha256: str | None = None,
    ttl: timedelta = ACCESS_TOKEN_TTL,
) -> tuple[str, dict[str, Any]]:
    key = ring.current
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "kind": kind,
        "name": name,
        "dept": department,
        "roles": sorted(roles),
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if client_id:
        claims["client_id"] = client_id
    if session_id:
        claims["sid"] = session_id
    if cert_sha256:
        claims["cnf"] = {"x5t#S256": cert_sha256}
    token = jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})
    return token, claims


class LocalVerifier(TokenVerifier):
    """The gateway checks its own tokens against its key ring, with no HTTP round trip, and refuses tokens
    of ended sessions and disabled users or clients (the live state is current within milliseconds)."""

    def __init__(
        self,
        ring: KeyRing,
        live: LiveState,
        *,
        issuer: str,
        audience: str,
        external: TokenVerifier | None = None,
        leeway: float = 30.0,
    ) -> None:
        super().__init__("", issuer=issuer, audience=audience, leeway=leeway)
        self.ring = ring
        self.live = live
        self.external = external

    async def verify(self, token: str) -> Principal:
        if self.external is not None:
            from gateway.oidc import token_issuer

            if token_issuer(token) == self.external.issuer:
                principal = await self.external.verify(token)
                if principal.subject in self.live.disabled_principals:
                    raise NotAuthenticated("账号已停用。", "The account is disabled.", code="token_revoked")
                return principal
        hit = self.already_verified(token)
        if hit is not None and self.ring.trusts(hit[1]):
            return self._still_live(hit[0])
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise NotAuthenticated("访问令牌格式不正确。", "The access token is malformed.") from None
        key = self.ring.by_kid(kid) if kid else None
        if key is None:
            raise NotAuthenticated(
                "访问令牌的签名密钥不被信任。", "The token is signed by a key this platform does not trust."
            )
        return self._still_live(self.verify_with_key(token, key.public))

    def _still_live(self, principal: Principal) -> Principal:
        if principal.session_id and principal.session_id in self.live.revoked_sessions:
            raise NotAuthenticated(
                "会话已注销，请重新登录。", "The session has ended; sign in again.", code="token_revoked"
            )
        if principal.subject in self.live.disabled_principals:
            raise NotAuthenticated("账号或客户端已停用。", "The account or client is disabled.", code="token_revoked")
        return principal
