"""gateway: 统一身份认证与访问网关 — identity, tokens, the platform's calendar master, and (later) routing."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from govshare_common.clock import Clock
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

from gateway import calendar_routes, routes
from gateway.bootstrap import ensure_admin
from gateway.events import registry
from gateway.keys import KeyRing
from gateway.tokens import LocalVerifier


async def _start(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    ring = KeyRing(settings.internal_secret.get_secret_value())
    async with app.state.db.unit_of_work() as uow:
        await ring.ensure(uow.conn, now=uow.clock.now())
        admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
        await ensure_admin(uow, admin_password)
    app.state.keyring = ring
    app.state.verifier = LocalVerifier(ring, issuer=settings.token_issuer, audience=settings.token_audience)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="gateway",
        title="统一身份认证与访问网关",
        migrations_dir=Path(__file__).parent / "migrations",
        registry=registry,
        routers=[routes.router, calendar_routes.router],
        on_startup=[_start],
        follows_calendar=False,
    )
    return create_service_app(spec, settings, clock)
