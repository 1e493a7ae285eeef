"""Forwarding /api/v1/<area>/… to the service that owns it, straight from ASGI to the upstream and back.

Pooled keep-alive connections per upstream (aiohttp: its connection pool and C parser cost a fraction of
httpx's per request, which at the gateway is most of the budget), a connect and a read timeout, one retry of
an idempotent request when the connection itself failed, and a circuit breaker: after repeated connection
failures or timeouts an upstream gets a fast 503 for a cool-down instead of every caller waiting for it to time
out. An answer the upstream gave, a 500 included, is never a failure of the upstream's availability: counting
it would let one caller's bad requests shut an area for every department. A connection whose exchange did not
finish cleanly is closed, never returned to the pool, so no caller reads another's leftovers. The caller's
bearer token goes along unchanged: the service verifies it against the gateway's JWKS itself (never a
trusted plain header). Bodies stream both ways; nothing is decompressed or re-encoded on the way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDict
from starlette.types import Receive, Send
from yarl import URL

from govshare_common.errors import AppError, Unavailable
from govshare_common.keep_alive import CALLER_IDLE_SECONDS

from gateway.domain import IDEMPOTENT_METHODS

log = logging.getLogger("govshare.gateway.proxy")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)


class GatewayTimeout(AppError):
    status = 504
    code = "upstream_timeout"


class CircuitBreaker:
    def __init__(self, *, threshold: int = 5, cool_down: float = 10.0, clock: Callable[[], float] = time.monotonic):
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


class Counter(Protocol):
    """Where the bytes that went through are counted, for the access record."""

    bytes_in: int
    bytes_out: int


class BodyTooLarge(AppError):
    status = 413
    code = "too_large"


async def _stream_body(receive: Receive, counter: Counter, limit: int | None) -> AsyncIterator[bytes]:
    """The caller's body as it arrives, counted; past `limit` bytes the upload stops (a chunked body declares no
    length, so the limit can only be enforced while it streams)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("the caller went away while sending its body")
        chunk = message.get("body", b"")
        if chunk:
            counter.bytes_in += len(chunk)
            if limit is not None and counter.bytes_in > limit:
                raise BodyTooLarge(
                    f"请求内容超过 {limit // (1024 * 1024)} MB 上限，请拆分后重试。",
                    f"The body exceeds the {limit // (1024 * 1024)} MB limit; split it.",
                )
            yield chunk
        if not message.get("more_body", False):
            return


class Upstream:
    def __init__(self, name: str, base_url: str, *, connect_timeout: float, read_timeout: float) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self.breaker = CircuitBreaker()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, limit_per_host=200, keepalive_timeout=CALLER_IDLE_SECONDS),
                timeout=self.timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
        return self._session

    async def forward(
        self,
        *,
        method: str,
        raw_path: str,
        query: bytes,
        headers: CIMultiDict[str],
        body: bytes | None,
        stream_from: Receive | None,
        send: Send,
        counter: Counter,
        stream_limit: int | None = None,
    ) -> None:
        """Send the request upstream and stream its answer to `send`. Refusals before the answer starts
        raise AppError (503 when unreachable or the breaker is open, 504 on a timeout)."""
        if not self.breaker.allow():
            raise Unavailable(
                f"服务 {self.name} 暂时不可用（熔断中），请稍后重试。",
                f"Service {self.name} is unavailable (circuit open); retry shortly.",
                details={"service": self.name},
                headers={"Retry-After": str(int(self.breaker.cool_down))},
            )
        url = URL(self.base_url + raw_path + ("?" + query.decode("latin-1") if query else ""), encoded=True)
        # A streamed body cannot be sent twice; only a buffered (or absent) one is retried.
        attempts = 2 if method in IDEMPOTENT_METHODS and stream_from is None else 1
        for attempt in range(attempts):
            data: Any = body if stream_from is None else _stream_body(stream_from, counter, stream_limit)
            try:
                response = await self._client().request(method, url, headers=headers, data=data, allow_redirects=False)
            except BodyTooLarge:
                raise
            except TimeoutError:
                self.breaker.failed()
                log.warning("upstream %s timed out on %s %s", self.name, method, raw_path)
                raise GatewayTimeout(
                    f"服务 {self.name} 响应超时。",
                    f"Service {self.name} did not answer in time.",
                    details={"service": self.name},
                ) from None
            except aiohttp.ClientError as exc:
                if isinstance(exc.__cause__, BodyTooLarge):  # aiohttp wraps what the body stream raised
                    raise exc.__cause__ from None
                # A refused connect, or a connection reset or closed before the answer: the service is not answering.
                if not isinstance(exc, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
                    raise
                if attempt + 1 < attempts:
                    continue
                self.breaker.failed()
                log.warning("upstream %s unreachable: %s", self.name, exc.__class__.__name__)
                raise Unavailable(
                    f"服务 {self.name} 无法连接，请稍后重试。",
                    f"Service {self.name} cannot be reached; retry shortly.",
                    details={"service": self.name},
                ) from None
            self.breaker.succeeded()
            await self._relay(response, send, counter)
            return

    @staticmethod
    async def _relay(response: aiohttp.ClientResponse, send: Send, counter: Counter) -> None:
        try:
            out_headers = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in HOP_BY_HOP]
            if response.headers.get("transfer-encoding"):
                # aiohttp hands over the de-chunked body: its length is unknown until the end.
                out_headers = [(k, v) for k, v in out_headers if k != b"content-length"]
            await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
            # One chunk held back, so that the last one goes out marked last: the door records the access just
            # before it, and a caller with a Content-Length has its answer with that chunk, not after it.
            held = b""
            async for chunk in response.content.iter_any():
                counter.bytes_out += len(chunk)
                if held:
                    await send({"type": "http.response.body", "body": held, "more_body": True})
                held = chunk
            await send({"type": "http.response.body", "body": held, "more_body": False})
        except BaseException:
            response.close()  # the answer was not read to its end: this connection must not serve anyone else
            raise
        else:
            response.release()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
