"""Two small services built only from libs/common — alpha emits item events, beta records what it handles —
for testing the event pipeline against the real broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import text

from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope, EventRegistry
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings
from govshare_common.testing import free_port, serve

HERE = Path(__file__).parent / "pipeline_migrations"


class ItemChanged(BaseModel):
    item: str
    version: int


def alpha_spec() -> ServiceSpec:
    registry = EventRegistry()
    registry.register("alpha.item.changed", ItemChanged)
    return ServiceSpec(name="alpha", title="测试生产者", migrations_dir=HERE / "alpha", registry=registry)


def beta_spec(failing: set[str] | None = None) -> ServiceSpec:
    """beta records every alpha event it handles; its handler raises for the items named in `failing`
    (a set the test may change while beta runs)."""
    sub = Subscription(source="alpha")
    failing = failing if failing is not None else set()

    @sub.on("alpha.item.changed")
    async def record(env: Envelope, uow: UnitOfWork) -> None:
        if env.subject in failing:
            raise ValueError(f"cannot handle {env.subject} version {env.data['version']}")
        await uow.execute(
            text(
                "INSERT INTO received (event_id, subject, version, seq) "
                "VALUES (CAST(:id AS uuid), :subject, :version, :seq)"
            ),
            {"id": env.id, "subject": env.subject, "version": env.data["version"], "seq": env.seq},
        )

    return ServiceSpec(
        name="beta", title="测试消费者", migrations_dir=HERE / "beta", subscriptions=[sub], follows_calendar=False
    )


async def change_items(uow: UnitOfWork, items: dict[str, int]) -> None:
    """One transaction: bump each item's version and announce it."""
    for item, version in items.items():
        await uow.execute(
            text(
                "INSERT INTO item (id, version) VALUES (:id, :v) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version"
            ),
            {"id": item, "v": version},
        )
        uow.emit("alpha.item.changed", item, ItemChanged(item=item, version=version))


@pytest.fixture
def pipeline(make_settings: Callable[..., Settings]) -> Callable[[], Any]:
    """Start alpha and beta on real ports: `async with pipeline() as (alpha, beta): ...` (beta's handler fails
    for the items in `failing`; other keywords are settings of both)."""

    @asynccontextmanager
    async def start(failing: set[str] | None = None, **overrides: Any) -> AsyncIterator[tuple[Any, Any]]:
        ports = {"alpha": free_port(), "beta": free_port(), "gateway": free_port()}
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        async with AsyncExitStack() as stack:
            alpha = create_service_app(alpha_spec(), make_settings(service_urls=urls, **overrides))
            beta = create_service_app(beta_spec(failing), make_settings(service_urls=urls, **overrides))
            await stack.enter_async_context(serve(alpha, ports["alpha"]))
            await stack.enter_async_context(serve(beta, ports["beta"]))
            yield alpha, beta

    return start


@pytest.fixture
def items() -> Callable[..., Any]:
    return change_items


@pytest.fixture
def alpha() -> Callable[[], ServiceSpec]:
    return alpha_spec
