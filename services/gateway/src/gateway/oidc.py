"""Trusting an external OIDC issuer (e.g. Keycloak) by configuration.

A token from that issuer is verified against its JWKS and its claims mapped to a Principal (roles and
department from configurable claim paths). Services behind the gateway only trust the gateway's keys, so the
gateway passes such a caller on with a short-lived token of its own carrying the same identity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt

from govshare_common.auth import Principal, TokenVerifier
from govshare_common.settings import Settings

FORWARD_TTL = timedelta(seconds=60)


def claim_at(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class OidcVerifier(TokenVerifier):
    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer and settings.oidc_jwks_url
        super().__init__(
            settings.oidc_jwks_url,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience or settings.token_audience,
        )
        self.roles_claim = settings.oidc_roles_claim
        self.department_claim = settings.oidc_department_claim

    def principal_from_claims(self, claims: dict[str, Any]) -> Principal:
        roles = claim_at(claims, self.roles_claim) or []
        return Principal(
            subject=f"oidc:{claims['sub']}",
            kind="user",
            name=str(claims.get("name") or claims.get("preferred_username") or ""),
            department=claim_at(claims, self.department_claim),
            roles=frozenset(r for r in roles if isinstance(r, str)),
            token_id=claims.get("jti"),
        )


def token_issuer(token: str) -> str | None:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
