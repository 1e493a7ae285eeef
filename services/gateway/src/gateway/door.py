"""The gateway behind the front door: the decision endpoint nginx asks, and what the gateway's own routes tell
nginx's access line.

nginx (`door_conf`) proxies every other service's area itself once the decision endpoint (`decision`) has
allowed the call. The gateway's own routes (tokens, identity administration, the calendar) are proxied to it
like any service; their answers carry who was served and why a call was refused in `x-govshare-*` headers,
which nginx writes into the access line and never shows the caller.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govshare_common.error_handlers import app_error_response
from govshare_common.errors import NotFound
from govshare_common.service import caller_request_id

from gateway.access_log import PUBLIC_DOOR_REFUSAL
from gateway.decision import DecisionEndpoint, _ascii
from gateway.door_conf import DECISION_PATH
from gateway.internal_listener import arrived_on_internal_listener, is_internal_route

log = logging.getLogger("govshare.gateway.door")

DENIED_STATUSES = {401, 403, 413, 429}
_NOT_AT_PUBLIC_DOOR = ("没有此接口。", "There is no such route.")


class AccessContext:
    """What a gateway route learned about the call, for its access line."""

    __slots__ = ("purpose", "reason", "resource")

    def __init__(self) -> None:
        self.reason: str | None = None
        self.resource: str | None = None
        self.purpose: str | None = None


class AccessHeaders:
    """Gives each answer of the gateway's own routes the principal and the refusal reason, for nginx to log;
    logs a refusal; answers an internal route asked for at the door like a path that does not exist."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        state = scope.setdefault("state", {})
        state["request_id"] = (
            state.get("request_id") or caller_request_id(headers.get("x-request-id")) or uuid.uuid4().hex
        )
        state["access"] = ctx = AccessContext()

        async def tell(message: Message) -> None:
            if message["type"] == "http.response.start":
                principal = state.get("principal")
                extra: list[tuple[bytes, bytes]] = []
                if principal is not None:
                    extra += [
                        (b"x-govshare-principal", _ascii(principal.subject)),
                        (b"x-govshare-kind", _ascii(principal.kind)),
                    ]
                    if principal.department:
                        extra.append((b"x-govshare-department", _ascii(principal.department)))
                    if principal.client_id:
                        extra.append((b"x-govshare-client", _ascii(principal.client_id)))
                if ctx.reason:
                    extra.append((b"x-govshare-reason", _ascii(ctx.reason)))
                if message["status"] in DENIED_STATUSES or ctx.reason == PUBLIC_DOOR_REFUSAL:
                    log.warning(
                        "access denied: %s %s status %s reason %s principal %s",
                        scope["method"],
                        scope["path"],
                        message["status"],
                        ctx.reason or "",
                        principal.subject if principal else "anonymous",
                    )
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if is_internal_route(scope["path"]) and not arrived_on_internal_listener(scope):
            ctx.reason = PUBLIC_DOOR_REFUSAL
            await app_error_response(Request(scope, receive), NotFound(*_NOT_AT_PUBLIC_DOOR))(scope, receive, tell)
            return
        await self.app(scope, receive, tell)


class GatewayApp(FastAPI):
    """The gateway's FastAPI app, with the decision endpoint taken before FastAPI's middleware stack (error,
    telemetry and body-limit layers the gateway's own routes need and a decision does not)."""

    decision: DecisionEndpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == DECISION_PATH:
            await self.decision(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def install_door(app: GatewayApp) -> None:
    app.add_middleware(AccessHeaders)
    app.decision = DecisionEndpoint(app.state)


def forwarded_authorization(app: Any, principal: Any) -> str | None:
    """A gateway token standing in for one from an external issuer, which the services do not trust."""
    if principal is None or not principal.subject.startswith("oidc:"):
        return None
    from gateway.oidc import FORWARD_TTL
    from gateway.tokens import issue_access_token

    settings = app.state.settings
    token, _ = issue_access_token(
        app.state.keyring,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        now=app.state.clock.now(),
        subject=principal.subject,
        kind=principal.kind,
        name=principal.name,
        department=principal.department,
        roles=sorted(principal.roles),
        ttl=FORWARD_TTL,
    )
    return f"Bearer {token}"
