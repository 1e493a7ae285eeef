"""Password hashing (argon2id) and the complexity rule of protection level 3."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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
