"""Identifiers of people and legal entities, and the platform's masking rules.

Owns: validation of the 18-digit resident ID number (GB 11643-1999) and the 18-character unified social
credit code (GB 32100-2015), the masking applied wherever personal data is shown or logged, and the keyed
hash that lets audit logs be searched without holding plain identifiers (R2.2, R4).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools as _itertools
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

IdentifierKind = Literal["resident_id", "uscc"]

_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RIC_CHECK_CHARS = "10X98765432"  # indexed by the weighted sum mod 11
# The weighted sum by three-digit groups, looked up: a 100,000-row ingest checks 100,000 of these.
_RIC_GROUPS = tuple(
    {
        "".join(d): sum(int(c) * w for c, w in zip(d, _RIC_WEIGHTS[g : g + 3], strict=False))
        for d in _itertools.product("0123456789", repeat=len(_RIC_WEIGHTS[g : g + 3]))
    }
    for g in range(0, 17, 3)
)
# The standard's own example 440524188001010014 is born in 1880, so 1900 would be too strict.
_RIC_EARLIEST_BIRTH = date(1800, 1, 1)

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 0-9, A-Y without I O S V Z; value = index
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^(i-1) mod 31


class InvalidIdentifier(ValueError):
    """An identifier that is malformed. Carries only a masked value, so it is safe to log."""

    def __init__(self, kind: IdentifierKind, value_masked: str, reason_code: str) -> None:
        super().__init__(f"invalid {kind} {value_masked!r}: {reason_code}")
        self.kind = kind
        self.value_masked = value_masked
        self.reason_code = reason_code


@dataclass(frozen=True, slots=True)
class UsccResult:
    """A well-formed USCC; check_ok is False when its check character does not match."""

    value: str
    check_ok: bool


def resident_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of a resident ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    g = _RIC_GROUPS
    total = (
        g[0][first17[0:3]]
        + g[1][first17[3:6]]
        + g[2][first17[6:9]]
        + g[3][first17[9:12]]
        + g[4][first17[12:15]]
        + g[5][first17[15:17]]
    )
    return _RIC_CHECK_CHARS[total % 11]


def validate_resident_id(value: str, *, today: date | None = None) -> str:
    """Return the normalised resident ID number (stripped, upper-case X) or raise InvalidIdentifier.

    Checks length, digits, a real birth date between 1800-01-01 and `today`, and the check character.
    The area code is not checked: no registry of historical codes is kept here.
    """
    v = value.strip().upper()

    def fail(reason: str) -> InvalidIdentifier:
        return InvalidIdentifier("resident_id", mask_resident_id(v), reason)

    if len(v) != 18:
        raise fail("length")
    if not (v[:17].isascii() and v[:17].isdigit() and (v[17].isdigit() or v[17] == "X")):
        raise fail("charset")
    try:
        birth = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise fail("birth_date") from None
    if not _RIC_EARLIEST_BIRTH <= birth <= (today or date.today()):
        raise fail("birth_date")
    if v[17] != resident_id_check_char(v[:17]):
        raise fail("check_char")
    return v


def uscc_check_char(first17: str) -> str:
    """The GB 32100 mod-31 check character for the first 17 characters of a USCC."""
    if len(first17) != 17 or any(c not in _USCC_VALUES for c in first17):
        raise ValueError("need exactly 17 characters from the USCC alphabet")
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> UsccResult:
    """Validate a unified social credit code's format; report (not raise) a wrong check character.

    Some genuinely registered codes fail the check, so the caller treats check_ok=False as a warning
    the provider may confirm. Format errors (length, alphabet, non-digit area code) raise InvalidIdentifier.
    """
    v = value.strip().upper()

    def fail(reason: str) -> InvalidIdentifier:
        # Masked like an ID number: a malformed "code" is sometimes a person's ID typed in the wrong field.
        return InvalidIdentifier("uscc", mask_resident_id(v), reason)

    if len(v) != 18:
        raise fail("length")
    if any(c not in _USCC_VALUES for c in v):
        raise fail("charset")
    # Characters 3-8 are the registering authority's administrative-division code, always digits.
    if not v[2:8].isdigit():
        raise fail("area_code")
    return UsccResult(v, v[17] == uscc_check_char(v[:17]))


def is_valid_uscc(value: str) -> bool:
    """Strict check: well-formed and the check character matches."""
    try:
        return validate_uscc(value).check_ok
    except InvalidIdentifier:
        return False


def mask_resident_id(value: str) -> str:
    """Keep the first 6 and last 4 characters: 11010519491231002X -> 110105********002X."""
    v = value.strip()
    if len(v) <= 10:
        return "*" * len(v)
    return v[:6] + "*" * (len(v) - 10) + v[-4:]


def mask_name(value: str) -> str:
    """Keep the first character (the family name in most names): 张三 -> 张*, 欧阳娜娜 -> 欧***."""
    v = value.strip()
    if len(v) <= 1:
        return "*" * len(v)
    return v[0] + "*" * (len(v) - 1)


def mask_phone(value: str) -> str:
    """Keep the first 3 and last 4 characters: 13800138000 -> 138****8000."""
    v = value.strip()
    if len(v) <= 7:
        return "*" * len(v)
    return v[:3] + "*" * (len(v) - 7) + v[-4:]


# Province level, then prefecture level, then county level. Names may not contain the level suffixes,
# Latin letters, digits or street words, nor 镇/乡/村 after their first character (镇雄县 is a county,
# 嘉积镇金海小区 is not), so a 小区 in the street part is not taken for a district.
_NOT_NAME = r"省市区县盟旗路街巷号A-Za-z0-9\s"
_NAME_FIRST = rf"[^{_NOT_NAME}]"
_NAME_REST = rf"[^{_NOT_NAME}镇乡村]"
_ADDRESS_HEAD = re.compile(
    rf"(?P<province>{_NAME_FIRST}{_NAME_REST}{{1,11}}?(?:省|自治区|特别行政区))?"
    rf"(?P<prefecture>{_NAME_FIRST}{_NAME_REST}{{0,11}}?(?:市|自治州|地区|盟))?"
    r"(?:市辖区)?"
    rf"(?:市中区|{_NAME_FIRST}{_NAME_REST}{{0,15}}?(?:区|县|市|旗))?"
)


def mask_address(value: str) -> str:
    """Keep the administrative divisions down to the district or county, mask the rest.

    江苏省常州市钟楼区南大街1号 -> 江苏省常州市钟楼区***. A county-level city (山东省泰安市肥城市…) counts as
    a county. Without a recognised province or city in front, everything is masked: a bare "…区" may be
    a residential compound (小区), not a district.
    """
    v = value.strip()
    if not v:
        return ""
    match = _ADDRESS_HEAD.match(v)
    if match is None or not (match.group("province") or match.group("prefecture")):
        return "***"
    return match.group(0) + "***"


def hash_identifier(value: str, *, key: bytes) -> str:
    """HMAC-SHA256 (hex) of the normalised identifier, for audit logs searchable without plain IDs.

    Not validated: a search for a malformed ID must hash the same way the log did.
    """
    if not key:
        raise ValueError("hash_identifier needs a non-empty key")
    normalised = value.strip().upper().encode("utf-8")
    return hmac.new(key, normalised, hashlib.sha256).hexdigest()
