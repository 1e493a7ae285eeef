"""The one error shape {code, message, details, trace_id}, in the caller's language (Accept-Language, zh-CN
by default), from exception handlers every service installs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from govshare_common.errors import AppError
from govshare_common.tracing import current_trace_id

log = logging.getLogger("govshare.errors")


def wants_english(request: Request) -> bool:
    header = request.headers.get("accept-language", "")
    first = header.split(",", 1)[0].strip().lower()
    return first.startswith("en")


def request_id_of(request: Request) -> str:
    """The id this request is answered and logged under (the one in its x-request-id response header), so that a
    person quoting a refusal's trace_id names this very request even when no span is exported."""
    state = request.scope.get("state") or {}
    return str(state.get("request_id") or request.headers.get("x-request-id", ""))


def error_body(request: Request, code: str, zh: str, en: str, details: Any) -> dict[str, Any]:
    return {
        "code": code,
        "message": en if wants_english(request) else zh,
        "details": details,
        # The request id, which the access record and the x-request-id header carry too, is what a person can
        # quote and an operator can find; the span's trace id only where no request id was assigned.
        "trace_id": request_id_of(request) or current_trace_id(),
    }


_STATUS_TEXT = {
    400: ("请求格式不正确，请检查后重试。", "The request is malformed; check it and try again.", "bad_request"),
    401: ("请先登录或提供有效的访问令牌。", "Sign in or send a valid access token.", "not_authenticated"),
    403: ("您没有执行此操作的权限。", "You are not allowed to do this.", "forbidden"),
    404: ("请求的资源不存在，请检查地址。", "Nothing exists at this address; check the URL.", "not_found"),
    405: ("不支持此请求方法。", "This method is not allowed here.", "method_not_allowed"),
    413: ("请求内容过大，请拆分后重试。", "The request body is too large; split it and retry.", "too_large"),
    429: ("请求过于频繁，请稍后重试。", "Too many requests; retry later.", "rate_limited"),
}


def app_error_response(request: Request, exc: AppError) -> JSONResponse:
    body = error_body(request, exc.code, exc.message_zh, exc.message_en, exc.details)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def internal_error_response(request: Request) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = error_body(
        request,
        "internal_error",
        "服务内部错误，已记录。请稍后重试；如持续出现，请将 trace_id 提供给平台运维。",
        "Internal error, logged. Retry later; if it persists, give the trace_id to platform operations.",
        {},
    )
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return app_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            fields.append(
                {"field": ".".join(loc) or "body", "code": err.get("type", "invalid"), "message": err.get("msg")}
            )
        body = error_body(
            request,
            "validation_failed",
            "提交的内容未通过校验，请按 details 中列出的字段逐项修改。",
            "The input did not validate; fix the fields listed in details.",
            {"fields": fields},
        )
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        zh, en, code = _STATUS_TEXT.get(
            exc.status_code, ("请求无法完成。", "The request could not be completed.", "error")
        )
        return JSONResponse(error_body(request, code, zh, en, {}), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error_response(request)
