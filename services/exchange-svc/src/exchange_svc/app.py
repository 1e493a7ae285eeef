"""exchange-svc: 数据交换服务. Builds the FastAPI app from the shared service shape."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from govshare_common.clock import Clock
from govshare_common.db import UnitOfWork
from govshare_common.jobs import Job
from govshare_common.peer_client import PeerClient
from govshare_common.platform_identity import configured_identity
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

from exchange_svc import batch_runs, jobs, resealing
from exchange_svc.events import registry
from exchange_svc.gateway_events import gateway_follower
from exchange_svc.projections import catalog, grants
from exchange_svc.routes import routers
from exchange_svc.sealing import Sealer


def _open_keyring(app: FastAPI) -> None:
    app.state.sealer = Sealer(app.state.settings.keyring())


async def _sweep_interrupted_batches(app: FastAPI) -> None:
    """At start: the batches a killed process of this service left running are marked failed (interrupted)."""
    async with app.state.db.unit_of_work() as uow:
        await batch_runs.mark_interrupted(uow)


def _reseal_job(app: FastAPI) -> Job:
    async def run(uow: UnitOfWork) -> None:
        sealer = getattr(app.state, "sealer", None)
        if sealer is not None:  # the keyring opens at start-up, just after the jobs start
            await resealing.reseal(uow, sealer)

    return Job(resealing.RESEAL_JOB, resealing.INTERVAL_SECONDS, run)


def _start_peer_client(app: FastAPI) -> None:
    """A platform with an identity asks its peers for their resources' data (cross-level query)."""
    me = app.state.federation_identity
    if me is not None:
        settings = app.state.settings
        app.state.peer_client = PeerClient(me, app.state.db.clock, verify_tls=settings.federation_ca_file or True)


async def _stop_peer_client(app: FastAPI) -> None:
    client = getattr(app.state, "peer_client", None)
    if client is not None:
        await client.close()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    holder: dict[str, FastAPI] = {}
    spec = ServiceSpec(
        name="exchange",
        title="数据交换服务",
        migrations_dir=Path(__file__).parent / "migrations",
        registry=registry,
        routers=routers,
        subscriptions=[catalog, grants, gateway_follower(lambda: holder["app"].state.calendar)],
        jobs=list(jobs.JOBS),
        on_startup=[_open_keyring, _start_peer_client, _sweep_interrupted_batches],
        on_shutdown=[_stop_peer_client],
    )
    app = create_service_app(spec, settings, clock)
    app.state.federation_identity = configured_identity(app.state.settings, app.state.profile)
    holder["app"] = app
    spec.jobs.append(_reseal_job(app))
    return app
