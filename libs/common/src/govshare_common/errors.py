"""Refusals a person can act on: one exception type per kind, with zh-CN and English messages.

Pure (no web framework), so domain modules raise them too; error_handlers.py turns them into the one error
shape {code, message, details, trace_id}.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A refusal a person can act on. Subclasses fix status and code; messages are zh-CN and English."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message_zh: str,
        message_en: str,
        *,
        details: Any = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message_en)
        self.message_zh = message_zh
        self.message_en = message_en
        self.details = details if details is not None else {}
        if code:
            self.code = code
        if status:
            self.status = status
        self.headers = headers


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"


class NotAuthenticated(AppError):
    status = 401
    code = "not_authenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class Unavailable(AppError):
    status = 503
    code = "unavailable"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"


def field_error(field: str, message_zh: str, message_en: str, *, code: str = "invalid") -> dict[str, str]:
    return {"field": field, "code": code, "message": message_zh, "message_en": message_en}
