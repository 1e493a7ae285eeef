"""The gateway's token signing keys: Ed25519, kept encrypted at rest, published as a JWKS.

Several keys may be live at once: the newest signs, the older ones stay in the JWKS until every token they
signed has expired, which is how keys rotate without downtime. Private keys are wrapped with the master
secret's key-wrapping purpose key (govshare_common.purpose_keys).
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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from govshare_common.purpose_keys import Purpose, PurposeKeys, parse_label

from gateway.live_state import notify_change

ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    public_jwk: dict[str, Any]
    created_at: datetime
    retires_at: datetime | None = None  # None while it signs

    @cached_property
    def public(self) -> Ed25519PublicKey:
        # One object per key, so a verified token's cache entry can tell it was checked against this key.
        return self.private.public_key()


def wrap(raw: bytes, keys: PurposeKeys, associated: str) -> bytes:
    """AES-GCM under the current key-wrapping key; the blob starts with that key's version label."""
    key = keys.current(Purpose.KEY_WRAPPING)
    nonce = os.urandom(12)
    return key.label.encode() + b"." + nonce + AESGCM(key.key).encrypt(nonce, raw, associated.encode())


def unwrap(blob: bytes, keys: PurposeKeys, associated: str) -> bytes:
    label, dot, rest = blob.partition(b".")
    version = parse_label(label.decode("ascii", "replace")) if dot and len(label) <= 6 else None
    attempts = [(key, rest) for key in keys.for_checking(Purpose.KEY_WRAPPING, version)] if version else []
    # Wrapped before purpose keys (no version label): under a key derived from the secret directly.
    attempts += [(_legacy_wrapping_key(secret), blob) for secret in keys.legacy_secrets()]
    for key, sealed in attempts:
        try:
            return AESGCM(key).decrypt(sealed[:12], sealed[12:], associated.encode())
        except InvalidTag:
            continue
    raise KeyUnwrapFailed(
        f"签名密钥 {associated} 无法用当前或上一版本的封装密钥解开 / cannot be unwrapped with the accepted "
        "key-wrapping keys (was GOVSHARE_MASTER_SECRET replaced without GOVSHARE_MASTER_SECRET_PREVIOUS, or "
        "key-wrapping rotated twice without a restart in between?)"
    )


def _legacy_wrapping_key(secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"govshare-signing-keys", info=b"v1").derive(secret)


class KeyUnwrapFailed(RuntimeError):
    pass


def _raw(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def public_jwk(kid: str, public: Ed25519PublicKey) -> dict[str, Any]:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "alg": ALGORITHM, "use": "sig", "kid": kid, "x": x}


class KeyRing:
    """The live signing keys, newest first: the newest signs; the others only verify, each until the last
    token it signed has expired (`retires_at`), then it leaves the JWKS.

    A rotation notifies every replica (live_state's channel), which reloads the ring at once."""

    def __init__(self, keys: PurposeKeys, *, token_lifetime: timedelta) -> None:
        self._purpose_keys = keys
        # The longest a token can stay valid after its key stopped signing: its lifetime plus the leeway.
        self.token_lifetime = token_lifetime
        self.keys: list[SigningKey] = []
        # Some live key is wrapped under an older key-wrapping key (or the previous master secret).
        self.stale_wrapping = False

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def by_kid(self, kid: str, *, now: datetime | None = None) -> SigningKey | None:
        key = next((k for k in self.keys if k.kid == kid), None)
        if key is not None and now is not None and key.retires_at is not None and key.retires_at <= now:
            return None
        return key

    def trusts(self, public: Any) -> bool:
        return any(k.public is public for k in self.keys)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.keys]}

    async def load(self, conn: AsyncConnection, *, now: datetime | None = None) -> None:
        rows = await conn.execute(
            text(
                "SELECT kid, private_key, public_jwk, created_at, retired_at FROM signing_key "
                "WHERE retired_at IS NULL OR retired_at > COALESCE(CAST(:now AS timestamptz), now()) "
                "ORDER BY (retired_at IS NULL) DESC, created_at DESC, kid"
            ),
            {"now": now},
        )
        keys = []
        current = self._purpose_keys.current(Purpose.KEY_WRAPPING).label.encode() + b"."
        self.stale_wrapping = False
        for row in rows:
            self.stale_wrapping |= not bytes(row.private_key).startswith(current)
            jwk = row.public_jwk if isinstance(row.public_jwk, dict) else json.loads(row.public_jwk)
            private = Ed25519PrivateKey.from_private_bytes(unwrap(row.private_key, self._purpose_keys, row.kid))
            keys.append(SigningKey(row.kid, private, jwk, row.created_at, row.retired_at))
        self.keys = keys

    async def rotate(self, conn: AsyncConnection, *, now: datetime) -> SigningKey:
        """Start signing with a new key. The one that signed until now keeps verifying until every token it
        signed has expired; keys whose time is up leave."""
        kid = uuid.uuid4().hex[:16]
        private = Ed25519PrivateKey.generate()
        jwk = public_jwk(kid, private.public_key())
        await conn.execute(
            text("UPDATE signing_key SET signing_until = :now, retired_at = :retires WHERE retired_at IS NULL"),
            {"now": now, "retires": now + self.token_lifetime},
        )
        await conn.execute(
            text(
                "INSERT INTO signing_key (kid, algorithm, private_key, public_jwk, created_at) "
                "VALUES (:kid, :alg, :pk, CAST(:jwk AS jsonb), :now)"
            ),
            {
                "kid": kid,
                "alg": ALGORITHM,
                "pk": wrap(_raw(private), self._purpose_keys, kid),
                "jwk": json.dumps(jwk),
                "now": now,
            },
        )
        await notify_change(conn, "signing_key", kid)
        await self.load(conn, now=now)
        return self.current

    async def rewrap(self, conn: AsyncConnection) -> int:
        """Wrap every live key again under the current key-wrapping key (after that purpose rotated, or the
        master secret was replaced), so the previous one can be dropped. Returns how many were rewrapped."""
        rows = await conn.execute(
            text("SELECT kid, private_key FROM signing_key WHERE retired_at IS NULL OR retired_at > now()")
        )
        count = 0
        for row in rows.all():
            blob = wrap(unwrap(row.private_key, self._purpose_keys, row.kid), self._purpose_keys, row.kid)
            await conn.execute(
                text("UPDATE signing_key SET private_key = :pk WHERE kid = :kid"), {"pk": blob, "kid": row.kid}
            )
            count += 1
        return count

    async def ensure(self, conn: AsyncConnection, *, now: datetime) -> None:
        """First start: make the first key (under a lock, so replicas starting together make one)."""
        await conn.execute(text("SELECT pg_advisory_xact_lock(7105)"))
        await self.load(conn, now=now)
        if not self.keys:
            await self.rotate(conn, now=now)
        elif self.stale_wrapping:
            # After key-wrapping rotated or the master secret was replaced: wrap again under the current key,
            # so the next rotation can drop the old one.
            await self.rewrap(conn)
            await self.load(conn, now=now)
