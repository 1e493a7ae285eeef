"""Machine-client secrets and refresh tokens: random, shown once, stored as keyed hashes.

They are high-entropy random strings, so a keyed SHA-256 is the right store (argon2 is for the low-entropy
secrets people choose, and would cost every client_credentials call tens of milliseconds). The key is the
client-secret-hashing purpose key; a stored hash names its version (`v2$…`; a bare hash is version 1), so
that key rotates without invalidating a single secret already issued.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from govshare_common.purpose_keys import Purpose, PurposeKeys, parse_label

_PURPOSE = Purpose.CLIENT_SECRET_HASHING


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def _hmac(secret: str, key: bytes) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def secret_hash(secret: str, keys: PurposeKeys) -> str:
    key = keys.current(_PURPOSE)
    digest = _hmac(secret, key.key)
    return digest if key.version == 1 else f"{key.label}${digest}"


def lookup_hashes(secret: str, keys: PurposeKeys) -> list[str]:
    """Every form this secret's stored hash may take (for finding a refresh token by its hash)."""
    out = []
    for key in keys.all_for_checking(_PURPOSE):
        digest = _hmac(secret, key.key)
        out.append(digest if key.version == 1 else f"{key.label}${digest}")
    return out + [_hmac(secret, legacy) for legacy in keys.legacy_secrets()]


def secret_matches(secret: str, stored: str | None, keys: PurposeKeys) -> bool:
    if stored is None:
        return False
    label, sep, digest = stored.rpartition("$")
    version = parse_label(label) if sep else 1
    if version is None:
        return False
    candidates = keys.for_checking(_PURPOSE, version)
    if version == 1:
        # A bare hash may also be from before purpose keys, keyed with the secret itself.
        candidates = [*candidates, *keys.legacy_secrets()]
    return any(hmac.compare_digest(_hmac(secret, key), digest) for key in candidates)
