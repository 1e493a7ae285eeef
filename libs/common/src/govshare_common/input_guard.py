"""The one check of a request's text before any route sees it: path, query, form and JSON body.

Every service app has it (service.py installs it), so no route needs its own: a NUL character, bytes that are
not UTF-8, a lone surrogate, a non-finite number or a JSON body nested deeper than text_input.MAX_JSON_DEPTH
is refused with 422 in the error shape, naming the field (a multipart form's text fields too; its files are
data). Bodies of other types (JSON lines and CSV batches, files) stream on untouched; exchange-svc checks each
ingested row with the same rules.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govshare_common.error_handlers import error_body
from govshare_common.errors import field_error
from govshare_common.text_input import INVALID_UTF8, TOO_DEEP, bytes_problem, describe, json_text_problem, text_problem

# Bodies the guard reads whole to check; a larger one (a caller's choice to send, not a platform form) passes
# on unchecked, as the door refuses bodies over 10 MB on any route but bulk uploads anyway.
MAX_CHECKED_BODY = 10 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CHECKED_MEDIA = frozenset({"application/json", "application/x-www-form-urlencoded", "multipart/form-data"})


def query_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    """Percent-decoded (name, value) pairs of a query string or urlencoded form, as bytes."""
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((unquote_to_bytes(name.replace(b"+", b" ")), unquote_to_bytes(value.replace(b"+", b" "))))
    return pairs


def pairs_problem(pairs: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    for name, value in pairs:
        label = name.decode("utf-8", "replace").replace("\x00", "\\u0000")
        problem = bytes_problem(name) or bytes_problem(value)
        if problem:
            return label or "query", problem
    return None


async def multipart_problem(headers: Headers, body: bytes) -> tuple[str, str] | None:
    """A text field of a multipart form (files are data, not text) that cannot be stored, or None."""

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(headers, stream()).parse()
    except MultiPartException:
        return None  # not a form: the route's own validation says so
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                problem = text_problem(name) or text_problem(value)
                if problem:
                    return name.replace("\x00", "\\u0000") or "form", problem
    finally:
        await form.close()
    return None


def body_problem(content_type: str, body: bytes) -> tuple[str, str] | None:
    media = _media(content_type)
    if media == "application/x-www-form-urlencoded":
        return pairs_problem(query_pairs(body))
    if media == "application/json" or media.endswith("+json"):
        try:
            return json_text_problem(body)
        except RecursionError:
            return "body", TOO_DEEP
        except UnicodeDecodeError:
            return "body", INVALID_UTF8
        except ValueError:
            return None  # not JSON: the route's own validation says so
    return None


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        problem: tuple[str, str] | None = None
        path_problem = bytes_problem(unquote_to_bytes(raw_path))
        if path_problem:
            problem = ("path", path_problem)
        else:
            problem = pairs_problem(query_pairs(scope.get("query_string", b"")))
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "")
        if problem is None and scope["method"] in BODY_METHODS and _checked_type(content_type):
            receive, body = await _buffered(receive)
            if body is not None:
                if _media(content_type) == "multipart/form-data":
                    problem = await multipart_problem(headers, body)
                else:
                    problem = body_problem(content_type, body)
        if problem is None:
            await self.app(scope, receive, send)
            return
        await _refuse(scope, *problem)(scope, receive, send)


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _checked_type(content_type: str) -> bool:
    media = _media(content_type)
    return media in CHECKED_MEDIA or media.endswith("+json")


async def _buffered(receive: Receive) -> tuple[Receive, bytes | None]:
    """The body read whole (None past MAX_CHECKED_BODY), and a receive that gives the app every byte again."""
    messages: list[Message] = []
    size = 0
    complete = False
    while size <= MAX_CHECKED_BODY:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request") if complete else None
    return replay, body


def _refuse(scope: Scope, field: str, problem: str) -> JSONResponse:
    field = field.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate in a JSON key
    zh, en = describe(field, problem)
    request = Request(scope)
    body: dict[str, Any] = error_body(
        request,
        "validation_failed",
        f"提交的内容未通过校验：{zh}",
        f"The input did not validate: {en}",
        {"fields": [field_error(field, zh, en, code=problem)]},
    )
    if not body["trace_id"]:
        body["trace_id"] = scope.get("state", {}).get("request_id", "")
    return JSONResponse(body, status_code=422)
