"""Who is calling: JWT verification against the gateway's JWKS, the Principal, and role checks.

The gateway signs short-lived tokens with asymmetric keys and publishes the public half at
/.well-known/jwks.json; services verify locally and refetch the key set when they meet an unknown key id
(key rotation without downtime).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request
from pydantic import BaseModel

from govshare_common.errors import Forbidden, NotAuthenticated

log = logging.getLogger("govshare.auth")

ROLES = ("platform_admin", "dept_admin", "dept_reviewer", "dept_system", "auditor", "federation_peer")
ALGORITHMS = ["EdDSA", "ES256", "RS256"]


class Principal(BaseModel):
    subject: str
    kind: str  # user | client
    name: str = ""
    department: str | None = None  # the department's code (its unified social credit code)
    roles: frozenset[str] = frozenset()
    client_id: str | None = None
    token_id: str | None = None
    session_id: str | None = None
    cert_sha256: str | None = None  # the client certificate this token is bound to (connectors)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        return cls(
            subject=str(claims["sub"]),
            kind=str(claims.get("kind", "user")),
            name=str(claims.get("name", "")),
            department=claims.get("dept"),
            roles=frozenset(claims.get("roles", [])),
            client_id=claims.get("client_id"),
            token_id=claims.get("jti"),
            session_id=claims.get("sid"),
            cert_sha256=(claims.get("cnf") or {}).get("x5t#S256"),
        )


VERIFIED_CACHE_SIZE = 10_000


class TokenVerifier:
    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        http: httpx.AsyncClient | None = None,
        leeway: float = 30.0,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        # Hosts' clocks differ by seconds: a token issued by a gateway whose clock is a little ahead (iat in
        # "the future") or checked a moment after its exp by a slow one is still honoured within the leeway.
        self.leeway = leeway
        self.http = http or httpx.AsyncClient(timeout=5.0)
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        # token -> (principal, exp, key): a signature check costs ~0.5 ms, and every call carries the same
        # token for its few minutes of life. Only successes are kept, and only until the token's exp.
        self._verified: dict[str, tuple[Principal, float, Any]] = {}

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            # A burst of tokens with an unknown kid must not become a burst of JWKS fetches.
            if not force and self._keys:
                return
            if time.monotonic() - self._fetched_at < 1.0 and self._keys:
                return
            resp = await self.http.get(self.jwks_url)
            resp.raise_for_status()
            keys = {}
            for jwk in resp.json().get("keys", []):
                keys[jwk["kid"]] = jwt.PyJWK.from_dict(jwk).key
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAuthenticated("访问令牌格式不正确。", "The access token is malformed.") from None
        kid = header.get("kid")
        if kid not in self._keys:
            try:
                await self._refresh(force=True)
            except httpx.HTTPError as exc:
                log.warning("cannot fetch JWKS from %s: %s", self.jwks_url, exc)
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise NotAuthenticated(
                "访问令牌的签名密钥不被信任。", "The token is signed by a key this platform does not trust."
            )
        return self.verify_with_key(token, key)

    def already_verified(self, token: str) -> tuple[Principal, Any] | None:
        """The principal of a token whose signature was checked before and has not expired, with the key
        that checked it (the caller decides whether that key is still trusted)."""
        hit = self._verified.get(token)
        if hit is None or time.time() >= hit[1]:
            return None
        return hit[0], hit[2]

    def verify_with_key(self, token: str, key: Any) -> Principal:
        hit = self._verified.get(token)
        if hit is not None and hit[2] is key and time.time() < hit[1]:
            return hit[0]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated(
                "访问令牌已过期，请重新获取。", "The access token has expired; get a new one."
            ) from None
        except jwt.PyJWTError:
            raise NotAuthenticated("访问令牌无效。", "The access token is invalid.") from None
        principal = self.principal_from_claims(claims)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = (principal, float(claims["exp"]) + self.leeway, key)
        return principal

    def principal_from_claims(self, claims: dict[str, Any]) -> Principal:
        """How this issuer's claims name a principal (an external issuer maps its own claim names)."""
        return Principal.from_claims(claims)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    return value.strip()


async def authenticate(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = bearer_token(request)
    if token is None:
        raise NotAuthenticated(
            "请求缺少访问令牌：请在 Authorization 头中携带 Bearer 令牌。",
            "No access token: send 'Authorization: Bearer <token>'.",
        )
    principal = await request.app.state.verifier.verify(token)
    revocations = getattr(request.app.state, "revocations", None)
    if revocations is not None:
        refusal = revocations.refusal(
            subject=principal.subject, session_id=principal.session_id, department=principal.department
        )
        if refusal is not None:
            log.warning(
                "access denied: %s %s token of %s no longer honoured (%s)",
                request.method,
                request.url.path,
                principal.subject,
                refusal,
            )
            raise NotAuthenticated(*_REVOKED_MESSAGES[refusal], code="token_revoked", details={"reason": refusal})
    request.state.principal = principal
    return principal


_REVOKED_MESSAGES = {
    "session_ended": ("会话已注销，请重新登录。", "The session has ended; sign in again."),
    "principal_disabled": ("账号或客户端已停用。", "The account or client is disabled."),
    "department_disabled": ("所属部门已停用。", "The caller's department is disabled."),
}


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require_roles(*roles: str) -> Callable[..., Any]:
    """Dependency: the caller holds at least one of `roles`. A refusal is logged."""

    async def check(request: Request, principal: CurrentPrincipal) -> Principal:
        if not principal.has(*roles):
            log.warning(
                "access denied: %s %s needs one of %s, caller %s has %s",
                request.method,
                request.url.path,
                ",".join(roles),
                principal.subject,
                ",".join(sorted(principal.roles)) or "none",
            )
            raise Forbidden(
                "您的角色无权执行此操作（需要：" + "、".join(ROLE_LABELS.get(r, r) for r in roles) + "）。",
                f"Your roles do not allow this (needs one of: {', '.join(roles)}).",
                details={"required_roles": list(roles)},
            )
        return principal

    return check


ROLE_LABELS = {
    "platform_admin": "平台管理员",
    "dept_admin": "部门信息资源管理员",
    "dept_reviewer": "部门审核员",
    "dept_system": "部门业务系统",
    "auditor": "审计员",
    "federation_peer": "上下级平台",
}
