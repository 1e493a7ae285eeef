"""The platform's checkpoint key: Ed25519, made once, its private half kept outside the database in the keyring
(`<keyring>/audit-checkpoint/<kid>.pem`, mode 0600; a KMS or secret store mounted there can take its place),
its public half in audit-svc's schema and published.

A checkpoint signs `checkpoint_message(...)`: anyone with the public key can check that the chain head at a
position is the one the platform signed, so a rewritten chain cannot pass for the original.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from govshare_common.outbox import lock_key


def checkpoint_message(position: int, chain_hash: bytes, recorded_at: datetime | None) -> bytes:
    stamp = recorded_at.isoformat() if recorded_at else ""
    return f"govshare-audit-checkpoint:v1|{position}|{chain_hash.hex()}|{stamp}".encode()


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


KEY_FOLDER = "audit-checkpoint"


class KeyStore:
    """Loads (or on first use makes) the signing key; public keys of every key ever used stay readable."""

    def __init__(self, keyring: Path) -> None:
        self.folder = Path(keyring) / KEY_FOLDER
        self._current: CheckpointKey | None = None

    async def current(self, conn: AsyncConnection, *, now: datetime) -> CheckpointKey:
        if self._current is None:
            self._current = await self._load_or_make(conn, now=now)
        return self._current

    def _file(self, kid: str) -> Path:
        return self.folder / f"{kid}.pem"

    async def _load_or_make(self, conn: AsyncConnection, *, now: datetime) -> CheckpointKey:
        # Replicas starting together must make one key, not one each.
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("audit:checkpoint-key")})
        rows = await conn.execute(text("SELECT kid FROM audit_signing_key ORDER BY created_at DESC, kid"))
        for (kid,) in rows.all():
            path = self._file(kid)
            if path.exists():
                private = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if not isinstance(private, Ed25519PrivateKey):
                    raise RuntimeError(f"{path} does not hold an Ed25519 private key")
                return CheckpointKey(kid, private)
        # No key yet, or only keys whose private half was retired: a new one.
        kid = uuid.uuid4().hex[:16]
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._file(kid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        await conn.execute(
            text("INSERT INTO audit_signing_key (kid, public_key, created_at) VALUES (:kid, :pub, :now)"),
            {"kid": kid, "pub": _raw_public(private.public_key()), "now": now},
        )
        return CheckpointKey(kid, private)


async def public_keys(conn: AsyncConnection) -> dict[str, bytes]:
    rows = await conn.execute(text("SELECT kid, public_key FROM audit_signing_key"))
    return {r.kid: bytes(r.public_key) for r in rows}
