"""The gateway's door: every request is identified, authorised, rate-limited, proxied and logged.

Local routes (tokens, identity administration, calendar) pass the same door: the middleware here logs every
request as a gateway.access event, allowed or denied, with what the handlers learned about it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govshare_common.auth import authenticate, bearer_token
from govshare_common.errors import AppError, Forbidden, NotAuthenticated, NotFound, TooManyRequests

from gateway.access_log import hashed_subjects
from gateway.auth_routes import presented_certificate
from gateway.domain import decide_data_access, is_anonymous, match_route, required_roles
from gateway.events import Access
from gateway.ratelimit import retry_after_header

log = logging.getLogger("govshare.gateway.door")

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_INGEST_BYTES = 256 * 1024 * 1024
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


class DoorMiddleware:
    """Logs every request as a gateway.access event, after its response is sent (plain ASGI, so a streamed
    answer is not wrapped in a task group and its bytes are counted in full)."""

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
        state["request_id"] = headers.get("x-request-id") or uuid.uuid4().hex
        state["access"] = ctx = AccessContext()
        status, length = 500, 0

        async def observe(message: Message) -> None:
            nonlocal status, length
            if message["type"] == "http.response.start":
                status = message["status"]
                length = int(Headers(raw=message.get("headers", [])).get("content-length") or 0)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            path = scope["path"]
            if path not in UNLOGGED_PATHS and not path.startswith("/internal/"):
                self._record(scope, state, ctx, headers, status, length, started)

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
        outcome = "denied" if status in DENIED_STATUSES else ("failed" if status >= 500 else "allowed")
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
                bytes_in=ctx.bytes_in or int(headers.get("content-length") or 0),
                bytes_out=ctx.bytes_out or length,
            )
        )


def install_door(app: FastAPI) -> None:
    app.add_middleware(DoorMiddleware, owner=app)


router = APIRouter()


@router.api_route(
    "/api/v1/{area}/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    include_in_schema=False,
)
async def proxy(request: Request, area: str, rest: str) -> Response:
    path = request.url.path
    ctx: AccessContext = request.state.access
    # The raw path keeps %2F inside a resource code from becoming a path separator.
    match = match_route(request.scope.get("raw_path", path.encode()).decode("latin-1"))
    if match is None:
        ctx.reason = "unknown_area"
        raise NotFound(f"没有名为 {area} 的接口区域。", f"There is no API area named {area!r}.")
    ctx.resource = match.resource_code
    ctx.purpose = request.headers.get("x-govshare-purpose") or request.query_params.get("purpose")
    ctx.subjects = request.query_params.getlist("subject")
    state = request.app.state
    method = request.method.upper()

    anonymous = is_anonymous(match.area, path, method) and bearer_token(request) is None
    principal = None
    if not anonymous:
        principal = await authenticate(request)
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
        rate, burst = state.live.client_limits.get(principal.client_id or "", (None, None))
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

    limit = MAX_INGEST_BYTES if path.endswith("/batches") else MAX_BODY_BYTES
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit:
        ctx.reason = "too_large"
        raise AppError(
            f"请求内容超过 {limit // (1024 * 1024)} MB 上限，请拆分后重试。",
            f"The body exceeds the {limit // (1024 * 1024)} MB limit; split it.",
            code="too_large",
            status=413,
        )
    body = await request.body() if method not in ("GET", "HEAD", "OPTIONS") else None
    if body is not None and len(body) > limit:
        ctx.reason = "too_large"
        raise AppError("请求内容过大，请拆分后重试。", "The body is too large; split it.", code="too_large", status=413)
    ctx.bytes_in = len(body or b"")
    upstream = state.upstreams[match.area.service]
    raw_path = request.scope.get("raw_path", path.encode()).decode("latin-1")
    authorization = _forwarded_authorization(request, principal)
    return await upstream.forward(request, path=raw_path, body=body, authorization=authorization)


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


@router.api_route("/console/{rest:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def console(request: Request, rest: str) -> Response:
    """The operator console's pages are public HTML; what they show comes from the authorised API."""
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    return await request.app.state.upstreams["console"].forward(request, path=raw_path, body=None)


_DATA_REFUSALS = {
    "resource_not_published": "该信息资源未发布或已撤销。",
    "no_department": "调用方不属于任何部门，不能访问数据。",
    "no_live_grant": "贵部门没有该信息资源的有效授权，请先提交共享申请。",
    "purpose_not_granted": "所声明的使用用途不在授权范围内。",
}
