"""Machine-client secrets and refresh tokens: random, shown once, stored as keyed hashes.

They are high-entropy random strings, so a keyed SHA-256 is the right store (argon2 is for the low-entropy
secrets people choose, and would cost every client_credentials call tens of milliseconds).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def secret_hash(secret: str, pepper: bytes) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, stored: str | None, pepper: bytes) -> bool:
    return stored is not None and hmac.compare_digest(secret_hash(secret, pepper), stored)
