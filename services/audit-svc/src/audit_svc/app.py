"""audit-svc: 审计与监督服务. Builds the FastAPI app from the shared service shape."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event

from govshare_common.clock import Clock
from govshare_common.db import UnitOfWork
from govshare_common.jobs import Job
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

from audit_svc import events, ledger, reports, systems
from audit_svc.events import registry
from audit_svc.ingest import Ingest
from audit_svc.ledger import WRITER_ROLE, Ledger
from audit_svc.routes import routers
from audit_svc.signing import KeyStore

log = logging.getLogger("govshare.audit")

CHECKPOINT_JOB = "audit-checkpoint"
CHECKPOINT_INTERVAL_SECONDS = 300.0
RETENTION_JOB = "audit-retention"
RETENTION_INTERVAL_SECONDS = 6 * 3600.0
PARTITIONS_JOB = "audit-partitions"
# Reports are due on a day and legacy systems by a date: an hourly look finds a lapse the same day.
REGISTERS_JOB = "audit-registers"
REGISTERS_INTERVAL_SECONDS = 3600.0
PARTITIONS_INTERVAL_SECONDS = 3600.0


def _run_as_writer(app: FastAPI) -> None:
    """Every pooled connection of this service runs as the append-only writer role (see migration 0002)."""
    engine = app.state.db.engine

    @event.listens_for(engine.sync_engine, "connect")
    def _set_role(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(lambda conn: conn.execute(f"SET ROLE {WRITER_ROLE}"))


async def _reconnect_as_writer(app: FastAPI) -> None:
    # Connections opened before the listener (migrations, calendar) leave the pool; new ones take the role.
    await app.state.db.engine.dispose()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    the_ledger = Ledger()
    ingest = Ingest(the_ledger)
    keys = KeyStore(settings.internal_secret.get_secret_value())

    async def checkpoint(uow: UnitOfWork) -> None:
        signed = await ledger.sign_checkpoint(uow.conn, keys, now=uow.clock.now())
        if signed and signed.get("new"):
            events.emit_checkpoint(uow, signed)

    async def retention(uow: UnitOfWork) -> None:
        years = app.state.profile.log_retention_years
        dropped, signed = await ledger.drop_expired(the_ledger, uow.conn, keys, now=uow.clock.now(), years=years)
        if signed and signed.get("new"):
            events.emit_checkpoint(uow, signed)
        for part in dropped:
            log.info("audit partition %s dropped after %d years", part["partition"], years)
            uow.emit(
                events.PARTITION_DROPPED,
                part["partition"],
                events.PartitionDropped(
                    partition=part["partition"],
                    month=part["month"],
                    first_position=part["first_position"],
                    last_position=part["last_position"],
                    entries=part["entries"],
                    checkpoint_id=part["checkpoint_id"],
                    retention_years=years,
                ),
            )

    async def registers(uow: UnitOfWork) -> None:
        # Reports past their due date and legacy systems past theirs: the violations the registers show.
        await reports.flag_missing(uow, app.state.calendar, app.state.profile)
        await systems.flag_unconnected(uow, app.state.calendar, app.state.profile)

    async def upcoming_partitions(uow: UnitOfWork) -> None:
        await ledger.ensure_upcoming_months(the_ledger, uow.conn, now=uow.clock.now())

    spec = ServiceSpec(
        name="audit",
        title="审计与监督服务",
        migrations_dir=Path(__file__).parent / "migrations",
        registry=registry,
        routers=routers,
        subscriptions=ingest.subscriptions(),
        jobs=[
            Job(CHECKPOINT_JOB, CHECKPOINT_INTERVAL_SECONDS, checkpoint),
            Job(RETENTION_JOB, RETENTION_INTERVAL_SECONDS, retention),
            Job(PARTITIONS_JOB, PARTITIONS_INTERVAL_SECONDS, upcoming_partitions),
            Job(REGISTERS_JOB, REGISTERS_INTERVAL_SECONDS, registers),
        ],
        on_startup=[_run_as_writer, _reconnect_as_writer],
    )
    app = create_service_app(spec, settings, clock)
    ingest.app = app
    app.state.ledger = the_ledger
    app.state.checkpoint_keys = keys
    return app
