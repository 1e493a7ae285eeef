"""Helpers for tests: run a service app on a real local port inside the test's event loop."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from govshare_common.keep_alive import SERVER_GRACEFUL_SHUTDOWN_SECONDS, SERVER_KEEP_ALIVE_SECONDS

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.05) -> T:
    """Await `check()` until it gives something truthy, and return that; fail after `timeout` seconds (what
    another service learns from events arrives a moment later)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)


async def eventually_equals(check: Callable[[], Awaitable[Any]], expected: Any, *, timeout: float = 30.0) -> None:
    """Await `check()` until it gives `expected`; fail naming the last value after `timeout` seconds."""
    last: list[Any] = []

    async def matches() -> bool:
        last[:] = [await check()]
        return bool(last[0] == expected)

    try:
        await eventually(matches, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"still {last[0]!r}, expected {expected!r}") from None


_PORTS_PER_WORKER = 1000
_next_port = itertools.count()


def free_port() -> int:
    """A free port from this test worker's own range, below the kernel's ephemeral ports.

    Not bind-to-0: a port picked that way is free again until its server binds it, and in that gap any outgoing
    connection (a Kafka client's, an HTTP pool's) may get it as its source port, or another worker's server may be
    handed it — a run's catalog-svc then failed with "address already in use". The stack tests' ranges
    (GOVSHARE_TEST_PORT_BASE + 200 a worker) sit above these."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    base = int(os.environ.get("GOVSHARE_TEST_PORT_BASE", "20000")) - 10_000 + _PORTS_PER_WORKER * worker
    for _ in range(_PORTS_PER_WORKER):
        port = base + next(_next_port) % _PORTS_PER_WORKER
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {base}…{base + _PORTS_PER_WORKER - 1}")


class _QuietServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns signals
        pass


@asynccontextmanager
async def serve(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """Start `app` (lifespan included) on 127.0.0.1:`port`; yields its base URL; stops it on exit."""
    port = port or free_port()
    server = _QuietServer(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            access_log=False,
            timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=SERVER_GRACEFUL_SHUTDOWN_SECONDS,
        )
    )

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit as exc:
            # uvicorn exits the process when start-up fails; in a task that would stop the whole event loop
            # (every later test of this worker with it), so it becomes this server's own error.
            raise RuntimeError(f"{app.title} failed to start (exit {exc.code}); the log above says why") from None

    task = asyncio.create_task(run())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.02)
    except BaseException:
        task.cancel()  # never leave a half-started server behind the test that gave up on it
        raise
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 30)
        except TimeoutError:
            raise AssertionError(
                f"{app.title} did not shut down within 30 s; still running:\n{_task_stacks()}"
            ) from None


def _task_stacks() -> str:
    import io

    out = io.StringIO()
    for pending in asyncio.all_tasks():
        if pending is not asyncio.current_task():
            pending.print_stack(limit=6, file=out)
    return out.getvalue()


class TokenIssuer:
    """A JWKS-publishing token issuer for tests of one service without the gateway.

    It signs with its own Ed25519 key and serves /.well-known/jwks.json on a real local port; point a service's
    `jwks_url` at `issuer.jwks_url` and it verifies these tokens exactly as it verifies the gateway's.
    """

    def __init__(self, *, issuer: str = "govshare", audience: str = "govshare") -> None:
        import base64

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.issuer = issuer
        self.audience = audience
        self.kid = "test-" + base64.urlsafe_b64encode(__import__("os").urandom(6)).decode()
        self._key = Ed25519PrivateKey.generate()
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._jwk = {
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        }
        self.port = free_port()
        self.jwks_url = f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def token(
        self,
        *,
        roles: list[str],
        department: str | None = None,
        subject: str | None = None,
        name: str = "测试用户",
        kind: str = "user",
        ttl_seconds: int = 300,
        clock_ahead_seconds: int = 0,
    ) -> str:
        """A signed token; `clock_ahead_seconds` issues it as a host whose clock runs that far ahead would."""
        import time
        import uuid

        import jwt

        now = int(time.time()) + clock_ahead_seconds
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject or uuid.uuid4().hex,
            "kind": kind,
            "name": name,
            "dept": department,
            "roles": roles,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, **kw: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kw)}"}  # type: ignore[arg-type]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TokenIssuer]:
        app = FastAPI()
        jwks: dict[str, object] = {"keys": [self._jwk]}

        @app.get("/.well-known/jwks.json")
        async def _jwks() -> dict[str, object]:
            return jwks

        async with serve(app, self.port):
            yield self
