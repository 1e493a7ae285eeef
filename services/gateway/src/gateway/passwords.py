"""Password hashing (argon2id) and the complexity rule of protection level 3."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from prometheus_client import Counter

_hasher = PasswordHasher()

# Every password check runs argon2 once, for names that exist and names that do not alike, so the time of an
# answer does not tell which; this counter is how that is seen (and tested) from outside.
PASSWORD_CHECKS = Counter("govshare_gateway_password_checks_total", "argon2 password verifications run by the gateway")
# A hash of a random password nobody knows: checked against when the named account does not exist.
_ABSENT_ACCOUNT_HASH = _hasher.hash(secrets.token_urlsafe(24))

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash (no such account) the same work is done and False returned."""
    PASSWORD_CHECKS.inc()
    try:
        matched = _hasher.verify(password_hash or _ABSENT_ACCOUNT_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None


def complexity_problems(password: str) -> list[str]:
    """What a password lacks (empty when it is acceptable): length and three of four character classes."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"至少 {MIN_LENGTH} 个字符")
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(classes) < 3:
        problems.append("至少包含大写字母、小写字母、数字、符号中的三类")
    return problems


def generate_password() -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = (
            secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + "".join(secrets.choice(alphabet) for _ in range(15)) + "-9"
        )
        if not complexity_problems(candidate):
            return candidate
