"""The gateway's door: every request is identified, authorised, rate-limited, proxied and logged.

Requests for another service's area (/api/v1/<area>/…, /console/…) are served here as plain ASGI, straight
to the upstream and back: at the gateway each request's framework overhead is paid on every call of every
department, so the hot path skips routing, dependency injection and per-request tracing unless spans are
exported. The gateway's own routes (tokens, identity administration, calendar) go on to FastAPI. Either way
the request becomes a gateway.access event, allowed or denied, with what was learned about it.
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govshare_common.auth import authenticate, bearer_token
from govshare_common.error_handlers import app_error_response, internal_error_response
from govshare_common.errors import AppError, Forbidden, NotAuthenticated, NotFound, TooManyRequests
from govshare_common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from govshare_common.service import caller_request_id
from govshare_common.tracing import exporting_spans

from gateway.access_log import hashed_subjects
from gateway.auth_routes import presented_certificate
from gateway.domain import LOCAL_AREAS, decide_data_access, is_anonymous, match_route, required_roles
from gateway.events import Access
from gateway.framing import NO_BODY, BodyFraming, body_framing
from gateway.internal_listener import arrived_on_internal_listener, is_internal_route
from gateway.proxy import HOP_BY_HOP, BodyTooLarge
from gateway.ratelimit import retry_after_header

log = logging.getLogger("govshare.gateway.door")
tracer = trace.get_tracer("govshare.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_INGEST_BYTES = 256 * 1024 * 1024
# Ingest batches and file uploads may be large; they stream through to exchange-svc.
BULK_UPLOAD_SUFFIXES = ("/batches", "/files")
DENIED_STATUSES = {401, 403, 413, 429}


@dataclass
class AccessContext:
    resource: str | None = None
    purpose: str | None = None
    subjects: list[str] = field(default_factory=list)
    reason: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0


UNLOGGED_PATHS = ("/healthz", "/readyz", "/metrics")
# An internal route asked for at the public door: answered like a path that does not exist, recorded as denied.
PUBLIC_DOOR_REFUSAL = "internal_route_on_public_door"
_NOT_AT_PUBLIC_DOOR = ("没有此接口。", "There is no such route.")


def is_proxied(path: str) -> bool:
    if path.startswith("/console/"):
        return True
    if not path.startswith("/api/v1/"):
        return False
    return path[8:].split("/", 1)[0] not in LOCAL_AREAS


class DoorMiddleware:
    """Serves proxied areas itself and logs every request as a gateway.access event after its response is
    sent (plain ASGI, so a streamed answer is not wrapped in a task group and its bytes are counted in full)."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        state = scope.setdefault("state", {})
        request_id = state.get("request_id") or caller_request_id(headers.get("x-request-id")) or uuid.uuid4().hex
        state["request_id"] = request_id
        state["access"] = ctx = AccessContext()
        status, length, responded, recorded = 500, 0, False, False
        path = scope["path"]
        proxied = is_proxied(path)
        internal = arrived_on_internal_listener(scope)

        def record_once() -> None:
            nonlocal recorded
            if not recorded and path not in UNLOGGED_PATHS and not internal:
                recorded = True
                self._record(scope, state, ctx, headers, status, length, started)

        async def observe(message: Message) -> None:
            nonlocal status, length, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                length = int(Headers(raw=message.get("headers", [])).get("content-length") or 0)
                if proxied:
                    message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            elif not message.get("more_body", False):
                # In the journal before the caller has the whole answer: a gateway killed the next instant has
                # still recorded every access its callers saw answered.
                record_once()
            await send(message)

        try:
            if is_internal_route(path) and not internal:
                ctx.reason = PUBLIC_DOOR_REFUSAL
                await app_error_response(Request(scope, receive), NotFound(*_NOT_AT_PUBLIC_DOOR))(
                    scope, receive, observe
                )
                return
            if not proxied:
                await self.app(scope, receive, observe)
                return
            request = Request(scope, receive)
            with self._span(scope, headers):
                try:
                    await self._proxy(request, scope, receive, observe, ctx, headers)
                except AppError as exc:
                    if responded:
                        raise
                    await app_error_response(request, exc)(scope, receive, observe)
                except Exception:
                    if responded:
                        raise
                    await internal_error_response(request)(scope, receive, observe)
        finally:
            if proxied:
                route = "/console" if path.startswith("/console/") else "/api/v1/" + path[8:].split("/", 1)[0]
                HTTP_REQUESTS.labels("gateway", scope["method"], route, str(status)).inc()
                HTTP_LATENCY.labels("gateway", route).observe(time.perf_counter() - started)
            record_once()  # an answer cut short, or none at all

    @staticmethod
    def _span(scope: Scope, headers: Headers) -> AbstractContextManager[Any]:
        if not exporting_spans():
            return nullcontext()
        return tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}", kind=trace.SpanKind.SERVER, context=extract(headers)
        )

    async def _proxy(
        self, request: Request, scope: Scope, receive: Receive, send: Send, ctx: AccessContext, headers: Headers
    ) -> None:
        state = self.owner.state
        method = scope["method"].upper()
        path = scope["path"]
        # The raw path keeps %2F inside a resource code from becoming a path separator.
        raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1")
        if path.startswith("/console/"):
            # The operator console's pages are public HTML; what they show comes from the authorised API.
            if method not in ("GET", "HEAD"):
                raise NotFound("控制台页面只支持读取。", "Console pages are read-only.")
            body_framing(headers, method)
            await state.upstreams["console"].forward(
                method=method,
                raw_path=raw_path,
                query=scope.get("query_string", b""),
                headers=self._upstream_headers(scope, request, None, NO_BODY),
                body=None,
                stream_from=None,
                send=send,
                counter=ctx,
            )
            return
        match = match_route(raw_path)
        if match is None:
            area = path[8:].split("/", 1)[0]
            ctx.reason = "unknown_area"
            raise NotFound(f"没有名为 {area} 的接口区域。", f"There is no API area named {area!r}.")
        ctx.resource = match.resource_code
        query = scope.get("query_string", b"")
        params = request.query_params if query else None
        ctx.purpose = headers.get("x-govshare-purpose") or (params.get("purpose") if params else None)
        ctx.subjects = params.getlist("subject") if params else []

        principal = None
        if not (is_anonymous(match.area, path, method) and bearer_token(request) is None):
            principal = await authenticate(request)
            await self._authorise(request, principal, match, method, ctx)

        limit = MAX_INGEST_BYTES if path.endswith(BULK_UPLOAD_SUFFIXES) else MAX_BODY_BYTES
        framing = body_framing(headers, method)
        if framing.declared is not None and framing.declared > limit:
            ctx.reason = "too_large"
            raise AppError(
                f"请求内容超过 {limit // (1024 * 1024)} MB 上限，请拆分后重试。",
                f"The body exceeds the {limit // (1024 * 1024)} MB limit; split it.",
                code="too_large",
                status=413,
            )
        body: bytes | None = None
        stream_from: Receive | None = None
        if not framing.has_body:
            pass
        elif framing.declared is None or method in ("POST", "PATCH"):
            # Passed through as it comes; a chunked body is counted on the way and stopped at the limit.
            stream_from = receive
        else:
            body = await request.body()  # small (declared within the limit) and retried if the upstream drops
            ctx.bytes_in = len(body)
        try:
            await state.upstreams[match.area.service].forward(
                method=method,
                raw_path=raw_path,
                query=query,
                headers=self._upstream_headers(scope, request, principal, framing),
                body=body,
                stream_from=stream_from,
                send=send,
                counter=ctx,
                stream_limit=limit if framing.declared is None else None,
            )
        except BodyTooLarge:
            ctx.reason = "too_large"
            raise

    async def _authorise(self, request: Request, principal: Any, match: Any, method: str, ctx: AccessContext) -> None:
        state = self.owner.state
        if principal.cert_sha256 and presented_certificate(request) != principal.cert_sha256:
            ctx.reason = "certificate_mismatch"
            raise NotAuthenticated(
                "此令牌绑定了客户端证书，请使用该证书发起请求。",
                "This token is bound to a client certificate; call with that certificate.",
                code="certificate_required",
            )
        needed = required_roles(match.area, method)
        if not principal.has(*needed):
            ctx.reason = "role"
            raise Forbidden(
                "您的角色无权访问此接口。",
                "Your roles do not allow this route.",
                details={"required_roles": sorted(needed)},
            )
        rate, burst = await state.live.limits_for(principal.client_id) if principal.client_id else (None, None)
        wait = state.rate_limiter.take(principal.client_id or principal.subject, rate, burst)
        if wait > 0:
            ctx.reason = "rate_limited"
            raise TooManyRequests(
                "请求过于频繁，请稍后重试。",
                "Too many requests; retry after the time in Retry-After.",
                headers={"Retry-After": retry_after_header(wait)},
                details={"retry_after_seconds": round(wait, 3)},
            )
        if match.area.data_route and match.resource_code:
            decision = decide_data_access(
                department=principal.department,
                resource=state.live.resources.get(match.resource_code),
                grants=state.live.grants_for(principal.department or "", match.resource_code),
                purpose=ctx.purpose,
                now=state.clock.now(),
            )
            if not decision.allowed:
                ctx.reason = decision.reason
                raise Forbidden(
                    _DATA_REFUSALS.get(decision.reason, "无权访问该信息资源。"),
                    f"No access to resource {match.resource_code}: {decision.reason}.",
                    code="no_grant",
                    details={"resource": match.resource_code, "reason": decision.reason},
                )

    def _upstream_headers(
        self, scope: Scope, request: Request, principal: Any, framing: BodyFraming
    ) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        for key, value in scope["headers"]:
            if key in HOP_BY_HOP or (key == b"content-length" and (framing.declared is None or not framing.has_body)):
                continue  # the upstream request's framing is aiohttp's, from the body actually sent
            out.add(key.decode("latin-1"), value.decode("latin-1"))
        out["x-request-id"] = scope["state"]["request_id"]
        authorization = _forwarded_authorization(request, principal)
        if authorization is not None:
            out["authorization"] = authorization
        client = scope.get("client")
        out["x-forwarded-for"] = client[0] if client else ""
        if exporting_spans():
            carrier: dict[str, str] = {}
            inject(carrier)
            out.update(carrier)
        return out

    def _record(
        self,
        scope: Scope,
        state: dict[str, Any],
        ctx: AccessContext,
        headers: Headers,
        status: int,
        length: int,
        started: float,
    ) -> None:
        principal = state.get("principal")
        denied = status in DENIED_STATUSES or ctx.reason == PUBLIC_DOOR_REFUSAL
        outcome = "denied" if denied else ("failed" if status >= 500 else "allowed")
        if outcome == "denied":
            log.warning(
                "access denied: %s %s status %s reason %s principal %s",
                scope["method"],
                scope["path"],
                status,
                ctx.reason or "",
                principal.subject if principal else "anonymous",
            )
        app_state = self.owner.state
        recorder = getattr(app_state, "access_recorder", None)
        if recorder is None:
            return
        recorder.record(
            Access(
                request_id=state["request_id"],
                at=app_state.clock.now(),
                principal=principal.subject if principal else None,
                principal_kind=principal.kind if principal else None,
                department=principal.department if principal else None,
                client_id=principal.client_id if principal else None,
                method=scope["method"],
                route=scope["path"],
                resource=ctx.resource,
                purpose=ctx.purpose,
                subjects_hashed=hashed_subjects(ctx.subjects, app_state.settings.hash_key()),
                outcome=outcome,
                reason=ctx.reason,
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                bytes_in=ctx.bytes_in or _declared_length(headers),
                bytes_out=ctx.bytes_out or length,
            )
        )


class GatewayApp(FastAPI):
    """The gateway's FastAPI app, with proxied paths taken to the door before FastAPI's middleware stack
    (error, telemetry and body-limit layers that the gateway's own routes need and a proxied call does not)."""

    door: DoorMiddleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_proxied(scope["path"]):
            scope["app"] = self
            await self.door(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def install_door(app: GatewayApp) -> None:
    app.add_middleware(DoorMiddleware, owner=app)  # logs the gateway's own routes
    app.door = DoorMiddleware(app.router, owner=app)  # serves and logs proxied paths


def _declared_length(headers: Headers) -> int:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() and len(value) <= 15 else 0


def _forwarded_authorization(request: Request, principal: Any) -> str | None:
    """The caller's own token, unless it came from an external issuer the services do not trust."""
    if principal is None or not principal.subject.startswith("oidc:"):
        return None
    from gateway.oidc import FORWARD_TTL
    from gateway.tokens import issue_access_token

    settings = request.app.state.settings
    token, _ = issue_access_token(
        request.app.state.keyring,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        now=request.app.state.clock.now(),
        subject=principal.subject,
        kind=principal.kind,
        name=principal.name,
        department=principal.department,
        roles=sorted(principal.roles),
        ttl=FORWARD_TTL,
    )
    return f"Bearer {token}"


_DATA_REFUSALS = {
    "resource_not_published": "该信息资源未发布或已撤销。",
    "no_department": "调用方不属于任何部门，不能访问数据。",
    "no_live_grant": "贵部门没有该信息资源的有效授权，请先提交共享申请。",
    "purpose_not_granted": "所声明的使用用途不在授权范围内。",
}
