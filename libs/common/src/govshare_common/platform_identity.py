"""Who this platform is to its peers: division code (GB/T 2260), level, name and its federation signing key.

The signing key is an Ed25519 key whose seed is the master secret's `federation-signing` purpose key, so it is
kept like every other key of the platform (nothing more to store, back up or wrap) and rotates by bumping that
purpose's version (`GOVSHARE_KEY_VERSIONS='{"federation-signing": 2}'`) — after which each peer's platform office
registers the new public key, as it registered the first. The identity is published anonymously at
`/.well-known/govshare-platform` (the gateway) so a peer's office can read what to register.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from govshare_common.profiles import Profile
from govshare_common.purpose_keys import Purpose, PurposeKeys
from govshare_common.settings import Settings

WELL_KNOWN_PATH = "/.well-known/govshare-platform"
LEVELS = ("district", "county_city", "prefecture_city", "province", "municipality")

# GB/T 2260's first two digits: the provincial-level divisions (11 Beijing … 65 Xinjiang, 71 Taiwan, 81/82 SARs).
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61}
    | {62, 63, 64, 65, 71, 81, 82}
)
_DIVISION = re.compile(r"^[0-9]{6}$")


def division_code_problem(code: str) -> str | None:
    """Why `code` is not a GB/T 2260 administrative division code, or None when it is one."""
    if not _DIVISION.match(code):
        return "行政区划代码须为6位数字（GB/T 2260），如 320404。"
    if int(code[:2]) not in _PROVINCES:
        return f"行政区划代码前两位 {code[:2]} 不是省级行政区划代码（GB/T 2260）。"
    return None


def signing_key(keys: PurposeKeys) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(keys.current(Purpose.FEDERATION_SIGNING).key)


def public_key_text(public: Ed25519PublicKey) -> str:
    """The form peers register and exchange: the raw 32-byte key, base64url without padding."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_public_key(value: str) -> Ed25519PublicKey | None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
    except ValueError:
        return None


@dataclass(frozen=True)
class PlatformIdentity:
    division_code: str
    level: str
    name: str
    key: Ed25519PrivateKey
    key_version: int

    @property
    def keyid(self) -> str:
        """What this platform's signatures name as their key: its division code (one live key per platform)."""
        return self.division_code

    def published(self) -> dict[str, Any]:
        return {
            "division_code": self.division_code,
            "level": self.level,
            "name": self.name,
            "keyid": self.keyid,
            "algorithm": "ed25519",
            "public_key": public_key_text(self.key.public_key()),
            "key_version": self.key_version,
        }


def identity(keys: PurposeKeys, *, division_code: str | None, level: str, name: str) -> PlatformIdentity | None:
    """This platform's identity, or None while no division code is configured (`GOVSHARE_PLATFORM_DIVISION_CODE`)."""
    if not division_code:
        return None
    problem = division_code_problem(division_code)
    if problem is not None:
        raise ValueError(f"GOVSHARE_PLATFORM_DIVISION_CODE: {problem}")
    if level not in LEVELS:
        raise ValueError(f"GOVSHARE_PLATFORM_LEVEL must be one of {', '.join(LEVELS)}")
    return PlatformIdentity(division_code, level, name, signing_key(keys), keys.version(Purpose.FEDERATION_SIGNING))


def configured_identity(settings: Settings, profile: Profile) -> PlatformIdentity | None:
    """The identity the settings give, level and name defaulting to the jurisdiction profile's."""
    return identity(
        settings.purpose_keys(),
        division_code=settings.platform_division_code,
        level=settings.platform_level or profile.level,
        name=settings.platform_name or profile.display_name,
    )
