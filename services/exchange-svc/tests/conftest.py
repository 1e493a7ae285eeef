"""Exchange service tests: the real exchange-svc and catalog-svc on real ports, a real token issuer, and a
stand-in request-svc (a ServiceSpec named "request" whose real outbox emits grant events per the contract) until
request-svc exists. Resources reach exchange-svc from catalog-svc's real events; grants from the stand-in's.
Real embedded PostgreSQL and broker from the root conftest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from govshare_common.clock import Clock
from govshare_common.events import EventRegistry
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings
from govshare_common.testing import TokenIssuer, eventually, free_port, serve

from catalog_svc.app import create_app as create_catalog
from exchange_svc.app import create_app as create_exchange

sys.path.insert(0, str(Path(__file__).parent))

from exchange_helpers import GrantExpired, GrantIssued, GrantRevoked


def request_peer_spec() -> ServiceSpec:
    registry = EventRegistry()
    registry.register("grant.issued", GrantIssued)
    registry.register("grant.revoked", GrantRevoked)
    registry.register("grant.expired", GrantExpired)
    return ServiceSpec(
        name="request",
        title="共享申请服务（测试替身）",
        migrations_dir=Path(__file__).parent / "peer_migrations",
        registry=registry,
        follows_calendar=False,
    )


class Exchange:
    def __init__(
        self,
        stack: AsyncExitStack,
        settings: Callable[..., Settings],
        urls: dict[str, str],
        issuer: TokenIssuer,
        clock: Clock | None,
    ) -> None:
        self.stack = stack
        self.settings = settings
        self.urls = urls
        self.issuer = issuer
        self.clock = clock
        self.app: Any = None
        self.catalog_app: Any = None
        self.peer: Any = None
        self.http: httpx.AsyncClient = httpx.AsyncClient(base_url=urls["exchange"], timeout=60.0)
        self.catalog: httpx.AsyncClient = httpx.AsyncClient(base_url=urls["catalog"], timeout=30.0)
        self._exchange_server: Any = None

    # --- who calls -------------------------------------------------------------------------------------

    def system(self, department: str, purpose: str | None = None) -> dict[str, str]:
        headers = self.issuer.headers(roles=["dept_system"], department=department, subject=f"system-{department}")
        if purpose:
            headers["X-Govshare-Purpose"] = purpose
        return headers

    def admin(self, department: str) -> dict[str, str]:
        return self.issuer.headers(roles=["dept_admin"], department=department, subject=f"admin-{department}")

    def platform(self) -> dict[str, str]:
        return self.issuer.headers(roles=["platform_admin"], department=None, subject="platform-office")

    # --- the exchange service itself, which a test may stop and start again ------------------------------

    async def start_exchange(self) -> None:
        self.app = create_exchange(self.settings(), self.clock)
        self._exchange_server = serve(self.app, int(self.urls["exchange"].rsplit(":", 1)[1]))
        await self._exchange_server.__aenter__()

    async def stop_exchange(self) -> None:
        await self._exchange_server.__aexit__(None, None, None)
        self._exchange_server = None

    async def start_exchange_process(self, log: Path) -> subprocess.Popen[bytes]:
        """exchange-svc in a process of its own (`govshare service exchange`, what a container runs) on the same
        port, for a test that kills it; the in-process one must be stopped first."""
        assert self._exchange_server is None
        proc = spawn_exchange(self.settings(), int(self.urls["exchange"].rsplit(":", 1)[1]), log)
        self.stack.callback(_stop, proc)

        async def ready() -> bool:
            try:
                return (await self.http.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60.0, interval=0.2)
        return proc

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.app.state.db.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def counts(self) -> dict[str, int]:
        tables = ["record", "record_change", "batch", "conflict", "outbox"]
        return {t: await self.scalar(f"SELECT count(*) FROM {t}") for t in tables}

    async def run_job(self, name: str) -> None:
        assert await self.app.state.jobs.run_once(name)

    # --- the other services' part --------------------------------------------------------------------------

    async def publish(self, body: dict[str, Any]) -> str:
        """Publish a resource through catalog-svc's API; wait until exchange-svc has it from the event."""
        dept = self.admin(body["provider_code"])
        created = await self.catalog.post("/api/v1/catalog/resources", json=body, headers=dept)
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        assert (await self.catalog.post(f"/api/v1/catalog/resources/{rid}/submit", headers=dept)).status_code == 200
        published = await self.catalog.post(f"/api/v1/catalog/resources/{rid}/publish", headers=self.platform())
        assert published.status_code == 200, published.text
        code = str(published.json()["code"])
        await eventually(lambda: self.scalar("SELECT count(*) FROM resource WHERE code = :c", c=code))
        return code

    async def grant(
        self,
        consumer: str,
        provider: str,
        code: str,
        *,
        items: list[str],
        unmasked: list[str] = (),  # type: ignore[assignment]
        purposes: list[str] = ("data_verification",),  # type: ignore[assignment]
    ) -> str:
        grant_id = f"g-{uuid.uuid4().hex[:8]}"
        async with self.peer.state.db.unit_of_work() as uow:
            uow.emit(
                "grant.issued",
                grant_id,
                GrantIssued(
                    grant_id=grant_id,
                    request_id=f"r-{grant_id}",
                    consumer_code=consumer,
                    provider_code=provider,
                    resource_id=None,
                    resource_code=code,
                    items=list(items),
                    unmasked_items=list(unmasked),
                    purposes=list(purposes),
                    scope="本部门社保经办人员",
                    conditions=[],
                    valid_from=None,
                    valid_until=None,
                ),
            )
        await eventually(lambda: self.scalar("SELECT count(*) FROM grant_projection WHERE grant_id = :g", g=grant_id))
        return grant_id

    async def revoke(self, grant_id: str, consumer: str, provider: str, code: str) -> None:
        async with self.peer.state.db.unit_of_work() as uow:
            uow.emit(
                "grant.revoked",
                grant_id,
                GrantRevoked(
                    grant_id=grant_id,
                    consumer_code=consumer,
                    resource_code=code,
                    reason="超出用途使用",
                    revoked_by=provider,
                    actor="reviewer",
                ),
            )
        await eventually(
            lambda: self.scalar("SELECT status = 'revoked' FROM grant_projection WHERE grant_id = :g", g=grant_id)
        )

    async def events(self, type_: str) -> list[dict[str, Any]]:
        async with self.app.state.db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT data FROM outbox WHERE type = :t ORDER BY id"), {"t": type_})
            return [r[0] for r in rows]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a service process these settings (GOVSHARE_<FIELD>)."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        env[f"GOVSHARE_{name.upper()}"] = str(value)
    return env


def spawn_exchange(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "govshare"), "service", "exchange", "--host", "127.0.0.1"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*command, "--port", str(port)],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def exchange(make_settings: Callable[..., Settings], issuer: TokenIssuer) -> Callable[..., Any]:
    """`async with exchange(clock=..., profile=...) as x:` runs catalog-svc, exchange-svc and a grant source."""

    @asynccontextmanager
    async def start(clock: Clock | None = None, **overrides: Any) -> AsyncIterator[Exchange]:
        ports = {n: free_port() for n in ("catalog", "exchange", "request", "gateway")}
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}

        def settings() -> Settings:
            return make_settings(service_urls=urls, jwks_url=issuer.jwks_url, **overrides)

        async with AsyncExitStack() as stack:
            x = Exchange(stack, settings, urls, issuer, clock)
            x.catalog_app = create_catalog(settings(), clock)
            await stack.enter_async_context(serve(x.catalog_app, ports["catalog"]))
            x.peer = create_service_app(request_peer_spec(), settings())
            await stack.enter_async_context(serve(x.peer, ports["request"]))
            await x.start_exchange()
            try:
                yield x
            finally:
                await x.http.aclose()
                await x.catalog.aclose()
                if x._exchange_server is not None:
                    await x.stop_exchange()

    return start
