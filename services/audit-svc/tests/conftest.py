"""Audit service tests: the real audit-svc on a real port, a real token issuer, and peer producers named
"request" and "exchange" (services built only from libs/common, standing in for request-svc and exchange-svc
until they exist) whose real outboxes publish contract payloads through real Kafka. Real embedded
PostgreSQL and broker from the root conftest."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import text

from govshare_common.clock import Clock
from govshare_common.database_roles import database_settings
from govshare_common.events import Envelope, EventRegistry
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings
from govshare_common.testing import TokenIssuer, free_port, serve

from audit_svc.app import create_app

sys.path.insert(0, str(Path(__file__).parent))

from contracts import exchange_registry, request_registry


def peer_spec(name: str, registry: EventRegistry) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        title="测试对端",
        migrations_dir=Path(__file__).parent / "peer_migrations",
        registry=registry,
        follows_calendar=False,
    )


@dataclass
class Audit:
    app: Any
    peers: dict[str, Any]
    http: httpx.AsyncClient
    issuer: TokenIssuer

    def auditor(self) -> dict[str, str]:
        return self.issuer.headers(roles=["auditor"], department=None, subject="auditor-1")

    def platform_admin(self) -> dict[str, str]:
        return self.issuer.headers(roles=["platform_admin"], department=None, subject="platform-office")

    def dept_admin(self, department: str) -> dict[str, str]:
        return self.issuer.headers(roles=["dept_admin"], department=department, subject=f"admin-{department}")

    async def emit(self, peer: str, events: list[tuple[str, str, BaseModel]]) -> None:
        """One transaction on the peer: its outbox, relay and Kafka carry the events to audit-svc."""
        async with self.peers[peer].state.db.unit_of_work() as uow:
            for type_, subject, payload in events:
                uow.emit(type_, subject, payload)

    async def deliver(self, source: str, envelopes: list[Envelope], *, chunk: int = 5_000) -> None:
        """Straight into audit-svc's inbox, as the consumer runner would after reading Kafka (bulk tests)."""
        for start in range(0, len(envelopes), chunk):
            await self.app.state.inbox.apply(source, envelopes[start : start + chunk], via="test")

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.app.state.db.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def logged(self, source: str, seq: int, wait_seconds: float = 60.0) -> None:
        """Wait until audit-svc has logged `source` up to `seq`."""
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            # Partitions are handled side by side, so the highest seq logged says nothing of the ones below it:
            # every one of 1..seq must be in the log.
            got = await self.scalar(
                "SELECT count(DISTINCT seq) FROM audit_entry WHERE source = :s AND seq <= :n", s=source, n=seq
            )
            if (got or 0) >= seq:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"audit logged {source} only up to {got} of {seq}")
            await asyncio.sleep(0.1)

    async def peer_head(self, peer: str, wait_seconds: float = 30.0) -> int:
        """The peer's last sequenced seq, once everything it wrote is sequenced."""
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            async with self.peers[peer].state.db.engine.connect() as conn:
                pending = (await conn.execute(text("SELECT count(*) FROM outbox WHERE seq IS NULL"))).scalar_one()
                head = (await conn.execute(text("SELECT last_seq FROM outbox_head"))).scalar_one()
            if not pending:
                return int(head)
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{peer} still has {pending} unsequenced events")
            await asyncio.sleep(0.05)

    async def settle(self, *peers: str) -> None:
        for peer in peers or tuple(self.peers):
            await self.logged(peer, await self.peer_head(peer))


@pytest.fixture
def audit(
    make_settings: Callable[..., Settings], issuer: TokenIssuer, service_database_urls: dict[str, str]
) -> Callable[..., Any]:
    """`async with audit(clock=..., profile=...) as a:` runs audit-svc with request and exchange peers."""

    @asynccontextmanager
    async def start(
        clock: Clock | None = None, *, peers: tuple[str, ...] = ("request", "exchange"), **overrides: Any
    ) -> AsyncIterator[Audit]:
        names = ("audit", "request", "exchange", "gateway", "catalog")
        urls = {n: f"http://127.0.0.1:{free_port()}" for n in names}
        async with AsyncExitStack() as stack:
            running = {}
            registries = {"request": request_registry(), "exchange": exchange_registry()}
            for name in peers:
                running[name] = create_service_app(
                    peer_spec(name, registries[name]), make_settings(service_urls=urls), clock
                )
                await stack.enter_async_context(serve(running[name], int(urls[name].rsplit(":", 1)[1])))
            own_role = database_settings("audit", service_database_urls)
            app = create_app(
                make_settings(service_urls=urls, jwks_url=issuer.jwks_url, **{**own_role, **overrides}), clock
            )
            await stack.enter_async_context(serve(app, int(urls["audit"].rsplit(":", 1)[1])))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=urls["audit"], timeout=60.0))
            yield Audit(app, running, http, issuer)

    return start
