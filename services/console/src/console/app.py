"""console: 管理控制台 — the single-page console (Vue 3 + Element Plus + ECharts, built into web/dist) served
at /console/ behind the gateway, with no privileges of its own: the browser calls the gateway API with the
signed-in user's token."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from govshare_common.clock import Clock
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

from console.platform_status import PlatformStatus
from console.routes import router


def _start(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.platform_status = PlatformStatus(settings, app.state.clock, app.state.profile.display_name)
    app.state.gateway_http = httpx.AsyncClient(base_url=settings.service_url("gateway"), timeout=5.0)


async def _stop(app: FastAPI) -> None:
    await app.state.platform_status.close()
    await app.state.gateway_http.aclose()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="console",
        title="管理控制台",
        migrations_dir=Path(__file__).parent,
        routers=[router],
        on_startup=[_start],
        on_shutdown=[_stop],
        uses_database=False,
        uses_broker=False,
    )
    return create_service_app(spec, settings, clock)
