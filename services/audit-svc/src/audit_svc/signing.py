"""The platform's checkpoint key: Ed25519, made once, kept in audit-svc's schema encrypted with a key derived
from the internal secret (AES-GCM, the key id as associated data), published as its public half.

A checkpoint signs `checkpoint_message(...)`: anyone with the public key can check that the chain head at a
position is the one the platform signed, so a rewritten chain cannot pass for the original.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from govshare_common.outbox import lock_key


def checkpoint_message(position: int, chain_hash: bytes, recorded_at: datetime | None) -> bytes:
    stamp = recorded_at.isoformat() if recorded_at else ""
    return f"govshare-audit-checkpoint:v1|{position}|{chain_hash.hex()}|{stamp}".encode()


def _wrapping_key(secret: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"govshare-audit-checkpoint-key", info=b"v1").derive(
        secret.encode()
    )
    return AESGCM(derived)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_jwk(kid: str, raw_public: bytes) -> dict[str, Any]:
    x = base64.urlsafe_b64encode(raw_public).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}


def verify_signature(raw_public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(raw_public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class CheckpointKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def raw_public(self) -> bytes:
        return _raw_public(self.private.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


class KeyStore:
    """Loads (or on first use makes) the signing key; public keys of every key ever used stay readable."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._current: CheckpointKey | None = None

    async def current(self, conn: AsyncConnection, *, now: datetime) -> CheckpointKey:
        if self._current is None:
            self._current = await self._load_or_make(conn, now=now)
        return self._current

    async def _load_or_make(self, conn: AsyncConnection, *, now: datetime) -> CheckpointKey:
        # Replicas starting together must make one key, not one each.
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("audit:checkpoint-key")})
        row = (
            await conn.execute(
                text("SELECT kid, private_key FROM audit_signing_key ORDER BY created_at DESC, kid LIMIT 1")
            )
        ).first()
        if row is not None:
            blob = bytes(row.private_key)
            raw = _wrapping_key(self._secret).decrypt(blob[:12], blob[12:], row.kid.encode())
            return CheckpointKey(row.kid, Ed25519PrivateKey.from_private_bytes(raw))
        kid = uuid.uuid4().hex[:16]
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        nonce = os.urandom(12)
        sealed = nonce + _wrapping_key(self._secret).encrypt(nonce, raw, kid.encode())
        await conn.execute(
            text(
                "INSERT INTO audit_signing_key (kid, private_key, public_key, created_at) "
                "VALUES (:kid, :pk, :pub, :now)"
            ),
            {"kid": kid, "pk": sealed, "pub": _raw_public(private.public_key()), "now": now},
        )
        return CheckpointKey(kid, private)


async def public_keys(conn: AsyncConnection) -> dict[str, bytes]:
    rows = await conn.execute(text("SELECT kid, public_key FROM audit_signing_key"))
    return {r.kid: bytes(r.public_key) for r in rows}
