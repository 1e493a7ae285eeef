"""Catalog service tests: the real service on a real port, a real token issuer, and a consumer service
("watcher", built only from libs/common) that receives the catalog's events through Kafka like any other
service would. Real embedded PostgreSQL and broker from the root conftest."""

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
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from govshare_common.clock import Clock
from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings
from govshare_common.testing import TokenIssuer, free_port, serve

from catalog_svc.app import create_app

# Test modules import their helpers by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from catalog_helpers import PSB


def watcher_spec() -> ServiceSpec:
    sub = Subscription(source="catalog")

    @sub.on("*")
    async def record(env: Envelope, uow: UnitOfWork) -> None:
        await uow.execute(
            text(
                "INSERT INTO received (event_id, type, subject, seq, data) "
                "VALUES (CAST(:id AS uuid), :type, :subject, :seq, :data)"
            ).bindparams(bindparam("data", type_=JSONB)),
            {"id": env.id, "type": env.type, "subject": env.subject, "seq": env.seq, "data": env.data},
        )

    return ServiceSpec(
        name="watcher",
        title="目录事件消费者（测试）",
        migrations_dir=Path(__file__).parent / "watcher_migrations",
        subscriptions=[sub],
        follows_calendar=False,
    )


@dataclass
class Catalog:
    app: Any
    http: httpx.AsyncClient
    issuer: TokenIssuer
    watcher: Any | None

    def dept_admin(self, department: str = PSB, **kw: Any) -> dict[str, str]:
        return self.issuer.headers(roles=["dept_admin"], department=department, subject=f"admin-{department}", **kw)

    def platform_admin(self) -> dict[str, str]:
        return self.issuer.headers(roles=["platform_admin"], department=None, subject="platform-office")

    def user(self, roles: list[str], department: str | None = None) -> dict[str, str]:
        return self.issuer.headers(roles=roles, department=department)

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.app.state.db.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def counts(self) -> dict[str, int]:
        """Rows in every catalog table and the outbox: 'changes nothing' means these stay the same."""
        tables = [
            "resource",
            "resource_version",
            "resource_history",
            "published_resource",
            "outbox",
            "obligation",
            "project",
            "project_resource",
        ]
        return {t: await self.scalar(f"SELECT count(*) FROM {t}") for t in tables}

    async def received(
        self, *, count: int | None = None, types: list[str] | None = None, wait_seconds: float = 30.0
    ) -> list[dict[str, Any]]:
        """Catalog events the watcher has handled (waits until `count` of `types` have arrived)."""
        assert self.watcher is not None, "start the catalog with watch=True"
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            async with self.watcher.state.db.engine.connect() as conn:
                rows = [
                    dict(r._mapping)
                    for r in await conn.execute(text("SELECT type, subject, seq, data FROM received ORDER BY seq"))
                ]
            if types is not None:
                rows = [r for r in rows if r["type"] in types]
            if count is None or len(rows) >= count:
                return rows
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(rows)} of {count} events arrived: {[r['type'] for r in rows]}")
            await asyncio.sleep(0.1)


@pytest.fixture
def catalog(make_settings: Callable[..., Settings], issuer: TokenIssuer) -> Callable[..., Any]:
    """`async with catalog(clock=..., profile=..., watch=True) as c:` runs catalog-svc (and the watcher)."""

    @asynccontextmanager
    async def start(clock: Clock | None = None, *, watch: bool = False, **overrides: Any) -> AsyncIterator[Catalog]:
        ports = {"catalog": free_port(), "watcher": free_port(), "gateway": free_port()}
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        async with AsyncExitStack() as stack:
            app = create_app(make_settings(service_urls=urls, jwks_url=issuer.jwks_url, **overrides), clock)
            await stack.enter_async_context(serve(app, ports["catalog"]))
            watcher = None
            if watch:
                watcher = create_service_app(watcher_spec(), make_settings(service_urls=urls))
                await stack.enter_async_context(serve(watcher, ports["watcher"]))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=urls["catalog"], timeout=30.0))
            yield Catalog(app, http, issuer, watcher)

    return start
