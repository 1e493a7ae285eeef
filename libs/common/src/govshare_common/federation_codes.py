"""How a resource owned on another platform is named here (catalog-svc shows it so, request-svc resolves it)."""

from __future__ import annotations


def mirrored_code(origin_division: str, code: str) -> str:
    """Codes are unique within one platform's catalog; a mirrored one is qualified by the platform that gave it."""
    return f"{origin_division}:{code}"
