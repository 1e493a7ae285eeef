"""The platform's own record ids are UUIDs: a path segment that is not one names no record (a 404, never a
database error from the cast)."""

from __future__ import annotations

import uuid


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError):
        return False
    return True
