"""The platform's master secret and the purpose keys derived from it.

One secret is configured (`GOVSHARE_MASTER_SECRET` or `GOVSHARE_MASTER_SECRET_FILE`); every key the platform
uses is derived from it with HKDF-SHA256, one per purpose and version, so a key that leaks for one purpose
says nothing about the others and each purpose rotates on its own:

- bump a purpose's version (`GOVSHARE_KEY_VERSIONS='{"internal-calls": 2}'`): the new version signs, wraps or
  hashes; the version before it is still accepted, so what was made under it keeps working until it is gone;
- replace the master secret itself: the old one goes to `GOVSHARE_MASTER_SECRET_PREVIOUS`, accepted for
  checking and unwrapping only, while everything new is made under the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The value the platform once shipped as a default; anyone may know it, so it is refused like an empty one.
DOCUMENTED_DEFAULTS = frozenset({"dev-internal-secret-change-me"})
MIN_SECRET_BYTES = 32
HOW_TO_MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


class Purpose(StrEnum):
    INTERNAL_CALLS = "internal-calls"  # HS256 service tokens between the platform's services
    KEY_WRAPPING = "key-wrapping"  # AES-GCM wrapping of signing keys kept in the database
    IDENTIFIER_HASHING = "identifier-hashing"  # HMAC of ID numbers and credit codes in logs and events
    CLIENT_SECRET_HASHING = "client-secret-hashing"  # HMAC of machine-client secrets and refresh tokens
    ENVELOPE_SIGNING = "envelope-signing"  # HMAC keys with which each service signs the events it publishes
    FEDERATION_SIGNING = "federation-signing"  # the Ed25519 seed of the platform's key for signing peer calls


class MasterSecretRefused(ValueError):
    """The configured master secret cannot be used; the message says why and how to make one."""


def check_master_secret(value: str | None, *, setting: str = "GOVSHARE_MASTER_SECRET") -> bytes:
    if not value:
        raise MasterSecretRefused(
            f"未配置平台主密钥 / no master secret: set {setting} (or GOVSHARE_MASTER_SECRET_FILE). "
            f"Make one with: {HOW_TO_MAKE_ONE}"
        )
    if value in DOCUMENTED_DEFAULTS:
        raise MasterSecretRefused(
            f"{setting} 是文档中的默认值，不能使用 / is the documented default and is refused. "
            f"Make one with: {HOW_TO_MAKE_ONE}"
        )
    raw = value.encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise MasterSecretRefused(
            f"{setting} 过短（{len(raw)} 字节，至少 {MIN_SECRET_BYTES}）/ is too short ({len(raw)} bytes, at least "
            f"{MIN_SECRET_BYTES}). Make one with: {HOW_TO_MAKE_ONE}"
        )
    return raw


@cache
def _derive(master: bytes, purpose: Purpose, version: int) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"govshare-purpose-key", info=f"{purpose.value}/v{version}".encode()
    ).derive(master)


@dataclass(frozen=True)
class PurposeKey:
    purpose: Purpose
    version: int
    key: bytes

    @property
    def label(self) -> str:
        """How a token header or a stored value names the key it was made with: `v<version>`."""
        return f"v{self.version}"


def parse_label(label: str | None) -> int | None:
    if not label or not label.startswith("v") or not label[1:].isdigit() or len(label) > 6:
        return None
    return int(label[1:])


class PurposeKeys:
    """Every purpose key of one platform: the current one of a purpose makes, the accepted ones check."""

    def __init__(
        self, master: bytes, *, previous_master: bytes | None = None, versions: dict[str, int] | None = None
    ) -> None:
        self._master = master
        self._previous = previous_master
        self._versions = {p: int((versions or {}).get(p.value, 1)) for p in Purpose}
        for purpose, version in self._versions.items():
            if version < 1:
                raise ValueError(f"GOVSHARE_KEY_VERSIONS: {purpose.value} must be 1 or more, got {version}")

    def version(self, purpose: Purpose) -> int:
        return self._versions[purpose]

    def current(self, purpose: Purpose) -> PurposeKey:
        version = self._versions[purpose]
        return PurposeKey(purpose, version, _derive(self._master, purpose, version))

    def accepts(self, purpose: Purpose, version: int) -> bool:
        """The current version, the one before it (still in use while it rotates out) and the one after it
        (a peer restarted with the new version a moment before this process)."""
        current = self._versions[purpose]
        return version >= 1 and current - 1 <= version <= current + 1

    def for_checking(self, purpose: Purpose, version: int) -> list[bytes]:
        """The keys a value made under `version` may have been made with: the master's, then the previous
        master's while it is being replaced. Empty when the version is no longer accepted."""
        if not self.accepts(purpose, version):
            return []
        keys = [_derive(self._master, purpose, version)]
        if self._previous is not None:
            keys.append(_derive(self._previous, purpose, version))
        return keys

    def legacy_secrets(self) -> list[bytes]:
        """The master secret(s) themselves, for what a data folder made before purpose keys existed used the
        secret for directly (bare client-secret hashes, signing keys and the audit checkpoint key wrapped with a
        key of their own derivation). Only ever for checking and unwrapping."""
        return [self._master] + ([self._previous] if self._previous is not None else [])

    def all_for_checking(self, purpose: Purpose) -> list[PurposeKey]:
        """Every key still accepted for a purpose, current first (lookups of hashes made under any of them)."""
        current = self._versions[purpose]
        out: list[PurposeKey] = []
        for version in (current, current - 1):
            if version >= 1:
                out.extend(PurposeKey(purpose, version, k) for k in self.for_checking(purpose, version))
        return out
