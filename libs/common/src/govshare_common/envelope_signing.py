"""Who really published a message on the broker: a MAC per source service over the message bytes.

The MAC is keyed BLAKE2b (RFC 7693's keyed mode, a PRF like HMAC) with a 256-bit tag: on this machine it
costs half of what HMAC-SHA256 does, and the relay and every consumer pay it once per event.
The relay signs each message value with its service's key and sends the tag in the `ce_sig` header; a
consumer recomputes it with the key it holds for the source the topic belongs to. Anyone who can write to a
topic can put a well-formed envelope there — the tag is what they cannot make. The feed (GET /internal/events)
needs no tag: it is read over the internally authenticated HTTP call, from the source itself.

Keys are bytes handed in by the caller; where they come from (a purpose key derived from the platform's
master secret) is the caller's business, so this module only signs and checks.
"""

from __future__ import annotations

import hashlib
import hmac

from govshare_common.purpose_keys import Purpose, PurposeKeys

SIGNATURE_HEADER = "ce_sig"


class EnvelopeSigner:
    def __init__(self, key: bytes) -> None:
        if not 16 <= len(key) <= 64:
            raise ValueError("an envelope signing key has 16 to 64 bytes")
        self._key = key

    def sign(self, value: bytes) -> bytes:
        return hashlib.blake2b(value, key=self._key, digest_size=32).hexdigest().encode()


class EnvelopeVerifier:
    """Checks tags with the key of each source service this consumer follows."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._signers = {source: EnvelopeSigner(key) for source, key in keys.items()}

    def is_genuine(self, source: str, value: bytes, tag: bytes | None) -> bool:
        signer = self._signers.get(source)
        if signer is None or not tag:
            return False
        return hmac.compare_digest(signer.sign(value), tag)


def signing_key_for(keys: PurposeKeys, service: str) -> bytes:
    """A service's envelope key: its own HMAC of the platform's envelope-signing purpose key (so one service's
    key reveals no other's)."""
    base = keys.current(Purpose.ENVELOPE_SIGNING).key
    return hmac.digest(base, b"govshare envelope signing " + service.encode(), "sha256")
