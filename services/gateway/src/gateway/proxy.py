"""Forwarding /api/v1/<area>/… to the service that owns it.

Pooled keep-alive connections per upstream, a connect and a read timeout, one retry of an idempotent request
when the connection itself failed, and a circuit breaker: after repeated failures an upstream gets a fast 503
for a cool-down instead of every caller waiting for it to time out. The caller's bearer token goes along
unchanged: the service verifies it against the gateway's JWKS itself (never a trusted plain header).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from govshare_common.errors import AppError, Unavailable

from gateway.domain import IDEMPOTENT_METHODS

log = logging.getLogger("govshare.gateway.proxy")

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


class GatewayTimeout(AppError):
    status = 504
    code = "upstream_timeout"


class CircuitBreaker:
    def __init__(self, *, threshold: int = 5, cool_down: float = 10.0, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.threshold = threshold
        self.cool_down = cool_down
        self._clock = clock
        self.failures = 0
        self.open_until = 0.0

    def allow(self) -> bool:
        # After the cool-down one request goes through as a trial (half-open); its outcome decides.
        return self._clock() >= self.open_until

    def succeeded(self) -> None:
        self.failures = 0
        self.open_until = 0.0

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = self._clock() + self.cool_down


class Upstream:
    def __init__(self, name: str, base_url: str, *, connect_timeout: float, read_timeout: float) -> None:
        self.name = name
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self.breaker = CircuitBreaker()

    async def forward(
        self, request: Request, *, path: str, body: bytes | None, authorization: str | None = None
    ) -> StreamingResponse:
        if not self.breaker.allow():
            raise Unavailable(
                f"服务 {self.name} 暂时不可用（熔断中），请稍后重试。",
                f"Service {self.name} is unavailable (circuit open); retry shortly.",
                details={"service": self.name},
                headers={"Retry-After": str(int(self.breaker.cool_down))},
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-request-id"] = request.state.request_id
        if authorization is not None:
            headers["authorization"] = authorization
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        method = request.method.upper()
        attempts = 2 if method in IDEMPOTENT_METHODS else 1
        for attempt in range(attempts):
            try:
                upstream_request = self.client.build_request(
                    method, path, params=request.query_params, headers=headers, content=body
                )
                response = await self.client.send(upstream_request, stream=True)
            except httpx.ConnectError as exc:
                if attempt + 1 < attempts:
                    continue
                self.breaker.failed()
                log.warning("upstream %s unreachable: %s", self.name, exc)
                raise Unavailable(
                    f"服务 {self.name} 无法连接，请稍后重试。",
                    f"Service {self.name} cannot be reached; retry shortly.",
                    details={"service": self.name},
                ) from None
            except httpx.TimeoutException:
                self.breaker.failed()
                log.warning("upstream %s timed out on %s %s", self.name, method, path)
                raise GatewayTimeout(
                    f"服务 {self.name} 响应超时。",
                    f"Service {self.name} did not answer in time.",
                    details={"service": self.name},
                ) from None
            if response.status_code >= 500:
                self.breaker.failed()
            else:
                self.breaker.succeeded()
            out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
            counter = request.state.access

            async def body_stream(resp: httpx.Response = response, counter: Any = counter) -> AsyncIterator[bytes]:
                async for chunk in resp.aiter_raw():
                    counter.bytes_out += len(chunk)
                    yield chunk

            return StreamingResponse(
                body_stream(),
                status_code=response.status_code,
                headers=out_headers,
                background=BackgroundTask(response.aclose),
            )
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.client.aclose()
