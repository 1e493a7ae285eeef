"""catalog-svc: 政务信息资源目录服务. Builds the FastAPI app from the shared service shape."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from govshare_common.clock import Clock
from govshare_common.error_handlers import error_body
from govshare_common.errors import field_error
from govshare_common.jobs import Job
from govshare_common.platform_identity import configured_identity
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

from catalog_svc import flows
from catalog_svc.domain import DomainError
from catalog_svc.events import registry
from catalog_svc.federation import guard
from catalog_svc.federation.pull import Puller
from catalog_svc.gateway_events import gateway_follower
from catalog_svc.routes import routers

OVERDUE_JOB = "catalog-obligations-overdue"
# Deadlines are whole days; checking every ten minutes marks a missed one early on the day after.
OVERDUE_INTERVAL_SECONDS = 600.0
NONCE_JOB = "catalog-federation-nonces"
NONCE_INTERVAL_SECONDS = 300.0

_STATUS = {"invalid": 422, "forbidden": 403, "conflict": 409, "not_found": 404}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    """Every catalog rule's refusal in the platform's one error shape; field problems under details.fields."""
    assert isinstance(exc, DomainError)
    details = dict(exc.details)
    if exc.problems:
        details["fields"] = [field_error(p.field, p.zh, p.en, code=p.code) for p in exc.problems]
    return JSONResponse(error_body(request, exc.code, exc.zh, exc.en, details), status_code=_STATUS[exc.kind])


def _start_pulling(app: FastAPI) -> None:
    """A platform with an identity pulls its children's catalog feeds (the children are found in the database,
    so a child registered later is pulled from the next round on)."""
    me = app.state.federation_identity
    if me is None:
        return
    settings = app.state.settings
    puller = Puller(
        app.state.db,
        me,
        interval=settings.federation_pull_interval_seconds,
        verify_tls=settings.federation_ca_file or True,
    )
    app.state.federation_puller = puller
    app.state.federation_task = asyncio.create_task(puller.run(), name="federation-pull")


async def _stop_pulling(app: FastAPI) -> None:
    task = getattr(app.state, "federation_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await app.state.federation_puller.close()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    holder: dict[str, FastAPI] = {}
    spec = ServiceSpec(
        name="catalog",
        title="政务信息资源目录服务",
        migrations_dir=Path(__file__).parent / "migrations",
        registry=registry,
        routers=routers,
        subscriptions=[gateway_follower(lambda: holder["app"].state)],
        jobs=[
            Job(OVERDUE_JOB, OVERDUE_INTERVAL_SECONDS, flows.mark_overdue_obligations),
            Job(NONCE_JOB, NONCE_INTERVAL_SECONDS, guard.forget_old_nonces),
        ],
        on_startup=[_start_pulling],
        on_shutdown=[_stop_pulling],
    )
    app = create_service_app(spec, settings, clock)
    app.state.federation_identity = configured_identity(app.state.settings, app.state.profile)
    holder["app"] = app
    app.add_exception_handler(DomainError, _domain_error)
    return app
