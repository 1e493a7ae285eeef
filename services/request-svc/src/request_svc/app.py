"""request-svc: 共享申请与授权服务. Builds the FastAPI app from the shared service shape."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI

from govshare_common.clock import Clock
from govshare_common.db import UnitOfWork
from govshare_common.jobs import Job
from govshare_common.peer_register import follow as follow_federation
from govshare_common.peer_register import forget_old_nonces
from govshare_common.platform_identity import configured_identity
from govshare_common.revocations import DEPARTMENT_CHANGED
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

from request_svc import flows, jurisdictions, open_data_demands
from request_svc.calendar_changes import calendar_follower
from request_svc.events import catalog, exchange, registry
from request_svc.federation.courier import Courier
from request_svc.routes import routers

DEADLINE_JOB = "request-deadlines"
GRANT_EXPIRY_JOB = "grant-expiry"
OPEN_DATA_DEMANDS_JOB = "open-data-demands-overdue"
# Deadlines are whole days: every ten minutes marks a missed one early on the working day after.
DEADLINE_INTERVAL_SECONDS = 600.0
# A grant ends at an instant; the gateway also checks valid_until itself, so a minute's lag here only delays
# the grant.expired event, never lets data through.
GRANT_EXPIRY_INTERVAL_SECONDS = 60.0
NONCE_JOB = "request-federation-nonces"
NONCE_INTERVAL_SECONDS = 300.0


def _start_courier(app: FastAPI) -> None:
    """A platform with an identity delivers its cross-level requests and the reports it owes its peers."""
    me = app.state.federation_identity
    if me is None:
        return
    settings = app.state.settings
    courier = Courier(
        app.state.db,
        me,
        interval=settings.federation_pull_interval_seconds,
        verify_tls=settings.federation_ca_file or True,
    )
    app.state.federation_courier = courier
    app.state.federation_courier_task = asyncio.create_task(courier.run(), name="federation-courier")


async def _stop_courier(app: FastAPI) -> None:
    task = getattr(app.state, "federation_courier_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await app.state.federation_courier.close()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    holder: dict[str, FastAPI] = {}

    async def deadlines(uow: UnitOfWork) -> None:
        state = holder["app"].state
        await flows.check_deadlines(uow, calendar=state.calendar, profile=state.profile)

    async def demands_overdue(uow: UnitOfWork) -> None:
        await open_data_demands.mark_overdue(uow, calendar=holder["app"].state.calendar)

    follow_federation(catalog)  # the peers and mirrored resources, as catalog-svc registers and mirrors them
    gateway = calendar_follower(lambda: holder["app"].state.calendar)
    gateway.on(DEPARTMENT_CHANGED)(jurisdictions.department_changed)
    spec = ServiceSpec(
        name="request",
        title="共享申请与授权服务",
        migrations_dir=Path(__file__).parent / "migrations",
        registry=registry,
        routers=routers,
        subscriptions=[catalog, exchange, gateway],
        jobs=[
            Job(DEADLINE_JOB, DEADLINE_INTERVAL_SECONDS, deadlines),
            Job(GRANT_EXPIRY_JOB, GRANT_EXPIRY_INTERVAL_SECONDS, flows.expire_grants),
            Job(OPEN_DATA_DEMANDS_JOB, DEADLINE_INTERVAL_SECONDS, demands_overdue),
            Job(NONCE_JOB, NONCE_INTERVAL_SECONDS, forget_old_nonces),
        ],
        on_startup=[_start_courier],
        on_shutdown=[_stop_courier],
    )
    app = create_service_app(spec, settings, clock)
    app.state.federation_identity = configured_identity(app.state.settings, app.state.profile)
    holder["app"] = app
    return app
