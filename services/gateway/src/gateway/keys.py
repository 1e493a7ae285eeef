"""The gateway's token signing keys: Ed25519, kept encrypted at rest, published as a JWKS.

Several keys may be live at once: the newest signs, the older ones stay in the JWKS until their tokens have
expired, which is how keys rotate without downtime.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    public_jwk: dict[str, Any]
    created_at: datetime

    @cached_property
    def public(self) -> Ed25519PublicKey:
        # One object per key, so a verified token's cache entry can tell it was checked against this key.
        return self.private.public_key()


def _wrapping_key(secret: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"govshare-signing-keys", info=b"v1").derive(
        secret.encode()
    )
    return AESGCM(derived)


def _encrypt(private: Ed25519PrivateKey, secret: str, kid: str) -> bytes:
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    nonce = os.urandom(12)
    return nonce + _wrapping_key(secret).encrypt(nonce, raw, kid.encode())


def _decrypt(blob: bytes, secret: str, kid: str) -> Ed25519PrivateKey:
    raw = _wrapping_key(secret).decrypt(blob[:12], blob[12:], kid.encode())
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_jwk(kid: str, public: Ed25519PublicKey) -> dict[str, Any]:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "alg": ALGORITHM, "use": "sig", "kid": kid, "x": x}


class KeyRing:
    def __init__(self, secret: str) -> None:
        self._secret = secret
        self.keys: list[SigningKey] = []  # newest first

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def by_kid(self, kid: str) -> SigningKey | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def trusts(self, public: Any) -> bool:
        return any(k.public is public for k in self.keys)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.keys]}

    async def load(self, conn: AsyncConnection) -> None:
        rows = await conn.execute(
            text(
                "SELECT kid, private_key, public_jwk, created_at FROM signing_key "
                "WHERE retired_at IS NULL ORDER BY created_at DESC, kid"
            )
        )
        keys = []
        for row in rows:
            jwk = row.public_jwk if isinstance(row.public_jwk, dict) else json.loads(row.public_jwk)
            keys.append(SigningKey(row.kid, _decrypt(row.private_key, self._secret, row.kid), jwk, row.created_at))
        self.keys = keys

    async def rotate(self, conn: AsyncConnection, *, now: datetime, overlap: timedelta) -> SigningKey:
        """Start signing with a new key; keys older than `overlap` retire (their tokens have expired)."""
        kid = uuid.uuid4().hex[:16]
        private = Ed25519PrivateKey.generate()
        jwk = public_jwk(kid, private.public_key())
        await conn.execute(
            text(
                "INSERT INTO signing_key (kid, algorithm, private_key, public_jwk, created_at) "
                "VALUES (:kid, :alg, :pk, CAST(:jwk AS jsonb), :now)"
            ),
            {
                "kid": kid,
                "alg": ALGORITHM,
                "pk": _encrypt(private, self._secret, kid),
                "jwk": json.dumps(jwk),
                "now": now,
            },
        )
        await conn.execute(
            text(
                "UPDATE signing_key SET retired_at = :now WHERE retired_at IS NULL AND kid <> :kid AND created_at < :cut"
            ),
            {"now": now, "kid": kid, "cut": now - overlap},
        )
        await self.load(conn)
        return self.current

    async def ensure(self, conn: AsyncConnection, *, now: datetime) -> None:
        """First start: make the first key (under a lock, so replicas starting together make one)."""
        await conn.execute(text("SELECT pg_advisory_xact_lock(7105)"))
        await self.load(conn)
        if not self.keys:
            await self.rotate(conn, now=now, overlap=timedelta(0))
