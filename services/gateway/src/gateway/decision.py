"""The door's decision endpoint: nginx asks it (`auth_request`) whether a call may pass, before reading the body.

Served as plain ASGI, not through FastAPI: it runs once per call nginx has not kept a decision for, and
routing, dependency injection and a response model would cost more than the check itself. The answer is an
empty 200 with who is calling (for the access line and the rate nginx enforces), or a 401/403 carrying the
real refusal — its status and its body in the error shape — in headers, which nginx turns into the answer
(`door_conf`). Only an allowing answer is kept by nginx (`door.js`), for at most half a second.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from govshare_common.auth import Principal
from govshare_common.errors import AppError, Forbidden, NotAuthenticated, NotFound

from gateway.domain import decide_data_access, is_anonymous, is_peer_call, match_route, required_roles

log = logging.getLogger("govshare.gateway.door")

DEFAULT_RATE = 20.0
DEFAULT_BURST = 40
# The public (anonymous routes: the open catalog and data, open-data demands, peers' signed feed pulls), one
# bucket per client address, kept by nginx: a flood of demands or open-catalog reads slows its sender only.
ANONYMOUS_RATE = 10.0
ANONYMOUS_BURST = 40
# Signed peer calls (cross-level requests and queries) share one bucket, kept apart from the public's: a peer's
# query traffic is its departments' traffic; the service refuses an unsigned or forged one at once.
PEER_RATE_KEY = "federation-peers"
PEER_RATE = 1000.0
PEER_BURST = 2000
CLIENT_CERT_HEADER = "x-client-cert-sha256"  # set by nginx from the verified TLS certificate, never by a caller


class Refusal(Exception):
    def __init__(self, error: AppError, reason: str, principal: Principal | None = None) -> None:
        self.error = error
        self.reason = reason
        self.principal = principal


class DecisionEndpoint:
    def __init__(self, state: Any) -> None:
        self.state = state  # the gateway app's state: verifier, live state, clock
        self.default_rate = DEFAULT_RATE  # for users, and clients without a rate of their own
        self.default_burst = DEFAULT_BURST

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        answer: list[tuple[bytes, bytes]] = []  # what is known of the call, refused or not, for its access line
        try:
            await self.decide(headers, answer)
        except Refusal as refused:
            answer += _refusal_headers(refused, headers)
            await _answer(send, 401 if refused.error.status == 401 else 403, answer)
            return
        await _answer(send, 200, answer)

    async def decide(self, headers: Headers, found: list[tuple[bytes, bytes]]) -> None:
        method = headers.get("x-original-method", "GET").upper()
        uri = headers.get("x-original-uri", "/")
        raw_path, _, query = uri.partition("?")
        params = parse_qs(query) if query else {}
        purpose = headers.get("x-govshare-purpose") or next(iter(params.get("purpose", [])), None)
        match = match_route(raw_path)
        if match is None:
            area = raw_path[8:].split("/", 1)[0]
            raise Refusal(
                NotFound(f"没有名为 {area} 的接口区域。", f"There is no API area named {area!r}."), "unknown_area"
            )
        if match.resource_code:
            found.append((b"x-govshare-resource", _ascii(match.resource_code)))
        if purpose:
            found.append((b"x-govshare-purpose", _ascii(purpose)))
        token = _bearer(headers.get("authorization", ""))
        if token is None and is_peer_call(match.area, raw_path):
            found += [
                (b"x-govshare-rate-key", PEER_RATE_KEY.encode()),
                (b"x-govshare-rate", str(PEER_RATE).encode()),
                (b"x-govshare-burst", str(PEER_BURST).encode()),
            ]
            return
        if token is None and is_anonymous(match.area, raw_path, method):
            found += [
                (b"x-govshare-rate-anonymous", b"1"),
                (b"x-govshare-rate", str(ANONYMOUS_RATE).encode()),
                (b"x-govshare-burst", str(ANONYMOUS_BURST).encode()),
            ]
            return
        if token is None:
            raise Refusal(
                NotAuthenticated(
                    "请求缺少访问令牌：请在 Authorization 头中携带 Bearer 令牌。",
                    "No access token: send 'Authorization: Bearer <token>'.",
                ),
                "no_token",
            )
        try:
            principal = await self.state.verifier.verify(token)
        except AppError as exc:
            raise Refusal(exc, exc.code) from None
        found += _principal_headers(principal)
        if principal.cert_sha256 and (headers.get(CLIENT_CERT_HEADER) or "").lower() != principal.cert_sha256:
            raise Refusal(
                NotAuthenticated(
                    "此令牌绑定了客户端证书，请使用该证书发起请求。",
                    "This token is bound to a client certificate; call with that certificate.",
                    code="certificate_required",
                ),
                "certificate_mismatch",
                principal,
            )
        needed = required_roles(match.area, method)
        if not principal.has(*needed):
            raise Refusal(
                Forbidden(
                    "您的角色无权访问此接口。",
                    "Your roles do not allow this route.",
                    details={"required_roles": sorted(needed)},
                ),
                "role",
                principal,
            )
        if match.area.data_route and match.resource_code:
            live = self.state.live
            decision = decide_data_access(
                department=principal.department,
                resource=live.resources.get(match.resource_code),
                grants=live.grants_for(principal.department or "", match.resource_code),
                purpose=purpose,
                now=self.state.clock.now(),
            )
            if not decision.allowed:
                raise Refusal(
                    Forbidden(
                        _DATA_REFUSALS.get(decision.reason, "无权访问该信息资源。"),
                        f"No access to resource {match.resource_code}: {decision.reason}.",
                        code="no_grant",
                        details={"resource": match.resource_code, "reason": decision.reason},
                    ),
                    decision.reason,
                    principal,
                )
        rate, burst = await self.state.live.limits_for(principal.client_id) if principal.client_id else (None, None)
        found += [
            (b"x-govshare-rate-key", _ascii(principal.client_id or principal.subject)),
            (b"x-govshare-rate", str(rate or self.default_rate).encode()),
            (b"x-govshare-burst", str(burst or self.default_burst).encode()),
        ]
        forwarded = self.state.forwarded_authorization(principal)
        if forwarded is not None:
            found.append((b"x-govshare-authorization", forwarded.encode()))


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _ascii(value: str) -> bytes:
    """A header value nginx can log: anything outside printable ASCII %-escaped."""
    return "".join(
        c if " " <= c <= "~" and c != "%" else "".join(f"%{b:02X}" for b in c.encode()) for c in value
    ).encode()


def _principal_headers(principal: Principal) -> list[tuple[bytes, bytes]]:
    out = [(b"x-govshare-principal", _ascii(principal.subject)), (b"x-govshare-kind", _ascii(principal.kind))]
    if principal.department:
        out.append((b"x-govshare-department", _ascii(principal.department)))
    if principal.client_id:
        out.append((b"x-govshare-client", _ascii(principal.client_id)))
    return out


def _refusal_headers(refused: Refusal, headers: Headers) -> list[tuple[bytes, bytes]]:
    error = refused.error
    english = headers.get("accept-language", "").split(",", 1)[0].strip().lower().startswith("en")
    body = {
        "code": error.code,
        "message": error.message_en if english else error.message_zh,
        "details": error.details,
        "trace_id": headers.get("x-request-id", ""),
    }
    log.warning(
        "access denied: %s %s status %s reason %s principal %s",
        headers.get("x-original-method", ""),
        headers.get("x-original-uri", "").partition("?")[0][:200],
        error.status,
        refused.reason,
        refused.principal.subject if refused.principal else "anonymous",
    )
    out = [
        (b"x-govshare-status", str(error.status).encode()),
        # ASCII JSON (non-ASCII as \\u escapes) is a valid header value and still the same JSON.
        (b"x-govshare-error", json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()),
        (b"x-govshare-reason", _ascii(refused.reason)),
    ]
    for name, value in (error.headers or {}).items():
        if name.lower() == "retry-after":
            out.append((b"x-govshare-retry-after", value.encode()))
    return out


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", b"0"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


_DATA_REFUSALS = {
    "resource_not_published": "该信息资源未发布或已撤销。",
    "no_department": "调用方不属于任何部门，不能访问数据。",
    "no_live_grant": "贵部门没有该信息资源的有效授权，请先提交共享申请。",
    "purpose_not_granted": "所声明的使用用途不在授权范围内。",
}
