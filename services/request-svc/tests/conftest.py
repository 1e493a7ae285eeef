"""request-svc tests: the real catalog-svc (whose events build request-svc's projection through Kafka) and the
real request-svc on real ports, a real token issuer, the session's embedded PostgreSQL and broker."""

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
from sqlalchemy import text

from govshare_common.clock import Clock
from govshare_common.settings import Settings
from govshare_common.testing import TokenIssuer, free_port, serve

from catalog_svc.app import create_app as create_catalog
from request_svc.app import create_app as create_request

sys.path.insert(0, str(Path(__file__).parent))

from request_helpers import CONSUMER, OTHER, PROVIDER, request_body, resource_body

CATALOG = "/api/v1/catalog"
API = "/api/v1/requests"


@dataclass
class Stack:
    app: Any
    http: httpx.AsyncClient  # request-svc
    catalog: httpx.AsyncClient
    issuer: TokenIssuer

    def as_(self, department: str | None, *roles: str) -> dict[str, str]:
        return self.issuer.headers(roles=list(roles), department=department, subject=f"{'-'.join(roles)}@{department}")

    def consumer(self) -> dict[str, str]:
        return self.as_(CONSUMER, "dept_admin")

    def reviewer(self, department: str = PROVIDER) -> dict[str, str]:
        return self.as_(department, "dept_reviewer")

    def office(self) -> dict[str, str]:
        return self.as_(None, "platform_admin")

    async def publish(self, share_type: str, department: str = PROVIDER, name: str = "户籍迁移登记信息") -> str:
        """Publish a resource through catalog-svc and wait until request-svc has learnt it from the events."""
        dept = self.as_(department, "dept_admin")
        created = await self.catalog.post(
            f"{CATALOG}/resources", json=resource_body(share_type, department, name), headers=dept
        )
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        assert (await self.catalog.post(f"{CATALOG}/resources/{rid}/submit", headers=dept)).status_code == 200
        published = await self.catalog.post(f"{CATALOG}/resources/{rid}/publish", headers=self.office())
        assert published.status_code == 200, published.text
        code = str(published.json()["code"])
        for _ in range(300):
            if await self.scalar("SELECT count(*) FROM resource_projection WHERE code = :c", c=code):
                return code
            await asyncio.sleep(0.05)
        raise AssertionError(f"request-svc never learnt {code}")

    async def submit(self, code: str, headers: dict[str, str] | None = None, **overrides: Any) -> httpx.Response:
        return await self.http.post(API, json=request_body(code, **overrides), headers=headers or self.consumer())

    async def act(self, request_id: str, action: str, headers: dict[str, str], **body: Any) -> httpx.Response:
        return await self.http.post(f"{API}/{request_id}/{action}", json=body, headers=headers)

    async def run_job(self, name: str) -> None:
        assert await self.app.state.jobs.run_once(name)

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.app.state.db.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def events(self, *types: str) -> list[dict[str, Any]]:
        async with self.app.state.db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT type, subject, data FROM outbox ORDER BY id"))
            return [dict(r._mapping) for r in rows if not types or r.type in types]

    async def counts(self) -> dict[str, int]:
        tables = ["share_request", "request_history", "share_grant", "transfer", "outbox"]
        return {t: await self.scalar(f"SELECT count(*) FROM {t}") for t in tables}


@pytest.fixture
def stack(make_settings: Callable[..., Settings], issuer: TokenIssuer) -> Callable[..., Any]:
    """`async with stack(clock=..., profile=...) as s:` runs catalog-svc and request-svc (request-svc on `clock`)."""

    @asynccontextmanager
    async def start(clock: Clock | None = None, **overrides: Any) -> AsyncIterator[Stack]:
        # exchange: request-svc follows its stale-data events; none run here, so its feed is a closed port.
        ports = {"catalog": free_port(), "request": free_port(), "gateway": free_port(), "exchange": free_port()}
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        async with AsyncExitStack() as es:
            catalog = create_catalog(make_settings(service_urls=urls, jwks_url=issuer.jwks_url, **overrides))
            await es.enter_async_context(serve(catalog, ports["catalog"]))
            app = create_request(make_settings(service_urls=urls, jwks_url=issuer.jwks_url, **overrides), clock)
            await es.enter_async_context(serve(app, ports["request"]))
            http = await es.enter_async_context(httpx.AsyncClient(base_url=urls["request"], timeout=30.0))
            cat = await es.enter_async_context(httpx.AsyncClient(base_url=urls["catalog"], timeout=30.0))
            yield Stack(app, http, cat, issuer)

    return start


__all__ = ["CONSUMER", "OTHER", "PROVIDER"]
