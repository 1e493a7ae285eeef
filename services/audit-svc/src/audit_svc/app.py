"""audit-svc: 审计与监督服务. Builds the FastAPI app from the shared service shape."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from govshare_common.clock import Clock
from govshare_common.database_roles import login_of
from govshare_common.db import UnitOfWork
from govshare_common.jobs import Job
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

from audit_svc import chain_watch, events, ledger, reports, systems
from audit_svc.events import registry
from audit_svc.ingest import Ingest
from audit_svc.ledger import Ledger
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
SCHEMA = "audit"


class WriterRoleMissing(RuntimeError):
    """audit-svc refuses to run with connections that could rewrite the log."""


async def _grant_writer(conn: AsyncConnection, settings: Settings) -> None:
    if not settings.database_owner_url:
        raise WriterRoleMissing(
            "audit-svc runs its connections as the append-only writer role: set GOVSHARE_DATABASE_URL to the "
            "writer's URL and GOVSHARE_DATABASE_OWNER_URL to the audit schema owner's (govshare up does both)."
        )
    writer = login_of(settings.database_url)
    if not writer:
        raise WriterRoleMissing("GOVSHARE_DATABASE_URL names no user: audit-svc's writer role must log in by name.")
    await ledger.grant_writer(conn, writer, SCHEMA)


async def _refuse_a_writer_that_can_rewrite(app: FastAPI) -> None:
    async with app.state.db.engine.connect() as conn:
        can = (
            await conn.execute(
                text(
                    "SELECT has_table_privilege('audit_entry', 'UPDATE') OR has_table_privilege('audit_entry', "
                    "'DELETE') OR has_table_privilege('audit_entry', 'TRUNCATE')"
                )
            )
        ).scalar_one()
    if can:
        raise WriterRoleMissing(
            "audit-svc's database role may update or delete audit entries; give it the writer role's URL "
            "(a login role that is not the schema owner, a superuser or a member of either)."
        )


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    the_ledger = Ledger()
    ingest = Ingest(the_ledger)
    keys = KeyStore(settings.keyring())

    async def checkpoint(uow: UnitOfWork) -> None:
        signed = await ledger.sign_checkpoint(uow.conn, keys, now=uow.clock.now())
        if signed and signed.get("new"):
            events.emit_checkpoint(uow, signed)
        await chain_watch.tail_status(uow.conn, uow.conn.engine)  # the alert's gauge, fresh every interval

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
        on_migrated=[_grant_writer],
        on_startup=[_refuse_a_writer_that_can_rewrite],
    )
    app = create_service_app(spec, settings, clock)
    ingest.app = app
    app.state.ledger = the_ledger
    app.state.checkpoint_keys = keys
    return app
