"""The gateway's internal listener: `/internal/...` (its outbox feed) for the platform's own services only.

The public door never answers an internal route, whatever credential a caller brings — a leaked or default
service secret must not open every event stream to the outside. The gateway's internal routes are served
instead on a second socket (`GOVSHARE_SERVICE_URLS["gateway-internal"]`, 127.0.0.1 or a cluster-internal
address), where the short-lived signed service token is still required.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from urllib.parse import urlsplit

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from govshare_common.keep_alive import SERVER_GRACEFUL_SHUTDOWN_SECONDS, SERVER_KEEP_ALIVE_SECONDS

# Set in the ASGI scope of a request that arrived on the internal listener.
SCOPE_KEY = "govshare.internal_listener"
INTERNAL_PREFIX = "/internal/"
SERVED = ("/healthz", "/readyz")


def is_internal_route(path: str) -> bool:
    return path.startswith(INTERNAL_PREFIX) or path == INTERNAL_PREFIX.rstrip("/")


def arrived_on_internal_listener(scope: Scope) -> bool:
    return bool(scope.get(SCOPE_KEY))


def _bind_host(host: str) -> str:
    """An address in the URL is bound as it is; a name (a cluster service such as `gateway-internal`) is how
    the others reach this process, not an address it has, so every interface of its pod is bound instead."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "127.0.0.1" if host == "localhost" else "0.0.0.0"
    return host


class _OnlyInternal:
    """What the internal socket serves: internal routes and health, nothing of the public API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not (is_internal_route(scope["path"]) or scope["path"] in SERVED):
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"not served on the internal listener"})
            return
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, SCOPE_KEY: True}
        await self.app(scope, receive, send)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the process's own server owns the signals
        pass


class InternalListener:
    def __init__(self, app: ASGIApp, url: str) -> None:
        parts = urlsplit(url)
        self.host = _bind_host(parts.hostname or "127.0.0.1")
        self.port = parts.port or 80
        config = uvicorn.Config(
            _OnlyInternal(app),
            host=self.host,
            port=self.port,
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=SERVER_GRACEFUL_SHUTDOWN_SECONDS,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    def _socket(self) -> socket.socket:
        # Every gateway process (GOVSHARE_GATEWAY_WORKERS of them on the one public port) listens here too;
        # the kernel spreads the connections over them.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        sock = self._socket()
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="gateway-internal-listener")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"the gateway's internal listener could not start on {self.host}:{self.port}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self._task, 10)
