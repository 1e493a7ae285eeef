"""A batch while it runs, and after: its progress row, the provider's cancel, and the runs a dead process left.

The running batch writes its progress on a connection of its own (each write committed at once, so the API
shows it while the batch's own transaction is still open) and holds a session advisory lock on the run for as
long as it lives: a run whose lock anyone can take has lost its process (SIGKILL, a crash), and the sweep
marks it failed with code `interrupted` and ends the database session that still held its transaction, if
PostgreSQL has not yet noticed — the staging tables are that transaction's temporary tables, gone with it.
Progress rows are operational state, not the record: their progress emits no event, and a failed batch leaves
none; the provider's cancel is its own act and is recorded (`exchange.batch.cancel_requested`, in the audit log
like any change), and the batch that is switched in is recorded with its `exchange.batch.ingested` as before.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.clock import Clock
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed, field_error
from govshare_common.outbox import lock_key
from govshare_common.text_input import printable

from exchange_svc import events
from exchange_svc.domain.batch_progress import (
    CANCELLABLE,
    FAILED,
    INTERRUPTED,
    RUNNING,
    STATES,
    pace,
)

log = logging.getLogger("govshare.exchange.batches")

SCHEMA = "exchange"
COLUMNS = (
    "id, resource_code, batch_id, provider_code, principal, format, state, chunk_rows, rows_received, rows_done, "
    "rows_total, bytes_received, bytes_total, started_at, updated_at, finished_at, cancel_requested_at, error, result"
)


def run_lock(run_id: uuid.UUID) -> int:
    return lock_key(f"exchange:batch-run:{run_id}")


def error_of(exc: BaseException) -> dict[str, Any]:
    """What a run keeps of the refusal that ended it: the error shape's code, message and details."""
    if isinstance(exc, AppError):
        return {"code": exc.code, "message": exc.message_zh, "message_en": exc.message_en, "details": exc.details}
    return {
        "code": "batch_failed",
        "message": "批次处理中断，整批未入库，请重新报送。",
        "message_en": f"The batch stopped ({type(exc).__name__}) and was not applied; send it again.",
        "details": {},
    }


class BatchCancelled(Conflict):
    def __init__(self, batch_id: str) -> None:
        super().__init__(
            "批次已按报送部门的要求取消，整批未入库。",
            "The batch was cancelled by its provider; nothing was applied.",
            code="batch_cancelled",
            details={"batch_id": batch_id},
        )


class RunTracker:
    """The progress of the one batch this process is running, on its own connection."""

    def __init__(self, conn: asyncpg.Connection, run_id: uuid.UUID, clock: Clock) -> None:
        self.conn = conn
        self.id = run_id
        self.clock = clock

    @classmethod
    async def start(
        cls,
        dsn: str,
        clock: Clock,
        *,
        resource_code: str,
        batch_id: str,
        provider_code: str,
        principal: str,
        fmt: str,
        chunk_rows: int,
        bytes_total: int | None,
    ) -> RunTracker:
        conn = await asyncpg.connect(
            dsn, server_settings={"search_path": SCHEMA, "application_name": "govshare-exchange-batch-run"}
        )
        run_id = uuid.uuid4()
        try:
            # Taken before the row exists, so whoever sees the row and can take the lock knows its owner is gone.
            await conn.execute("SELECT pg_advisory_lock($1)", run_lock(run_id))
            now = clock.now()
            await conn.execute(
                "INSERT INTO batch_run (id, resource_code, batch_id, provider_code, principal, format, state, "
                "chunk_rows, bytes_total, started_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'receiving', $7, "
                "$8, $9, $9)",
                run_id,
                resource_code,
                batch_id,
                provider_code,
                principal,
                fmt,
                chunk_rows,
                bytes_total,
                now,
            )
        except BaseException:
            await conn.close()
            raise
        return cls(conn, run_id, clock)

    async def attach_backend(self, pid: int, started_at: datetime) -> None:
        await self.conn.execute(
            "UPDATE batch_run SET backend_pid = $2, backend_started_at = $3 WHERE id = $1", self.id, pid, started_at
        )

    async def report(
        self, *, state: str, rows_received: int, rows_done: int, rows_total: int | None, bytes_received: int
    ) -> bool:
        """Writes how far the batch is; True when its provider has asked to cancel it."""
        asked = await self.conn.fetchval(
            "UPDATE batch_run SET state = $2, rows_received = $3, rows_done = $4, rows_total = $5, "
            "bytes_received = $6, updated_at = $7 WHERE id = $1 RETURNING cancel_requested_at IS NOT NULL",
            self.id,
            state,
            rows_received,
            rows_done,
            rows_total,
            bytes_received,
            self.clock.now(),
        )
        return bool(asked)

    async def begin_applying(self) -> bool:
        """Into `applying` unless a cancel came first (False): from here the batch ends done or failed."""
        moved = await self.conn.fetchval(
            "UPDATE batch_run SET state = 'applying', updated_at = $2 WHERE id = $1 AND cancel_requested_at IS NULL "
            "RETURNING id",
            self.id,
            self.clock.now(),
        )
        return moved is not None

    async def end(self, state: str, error: dict[str, Any]) -> None:
        await self.conn.execute(
            "UPDATE batch_run SET state = $2, error = $3::jsonb, updated_at = $4, finished_at = $4 "
            "WHERE id = $1 AND finished_at IS NULL",
            self.id,
            state,
            json.dumps(_storable(error), ensure_ascii=False, default=str),
            self.clock.now(),
        )

    async def close(self) -> None:
        await self.conn.close()  # the session ends: its advisory lock goes with it


def _storable(value: Any) -> Any:
    """The refusal as jsonb can hold it: a batch refused for a NUL or an undecodable byte quotes that text, and
    jsonb takes neither, so such characters are kept escaped (as the access records keep them)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


async def finish_done(uow: UnitOfWork, run_id: uuid.UUID, result: dict[str, Any]) -> None:
    """`done`, in the batch's own transaction: a run reads done exactly when its rows are in."""
    await uow.execute(
        text(
            "UPDATE batch_run SET state = 'done', rows_done = :n, rows_received = greatest(rows_received, :n), "
            "rows_total = :n, result = CAST(:r AS jsonb), updated_at = :at, finished_at = :at WHERE id = :id"
        ),
        {"id": run_id, "n": result["rows"], "r": json.dumps(result, default=str), "at": uow.clock.now()},
    )


def shown(row: Any, now: datetime) -> dict[str, Any]:
    run = dict(row._mapping)
    speed = pace(
        state=run["state"],
        started_at=run["started_at"],
        now=now,
        rows_done=run["rows_done"],
        rows_total=run["rows_total"],
        bytes_received=run["bytes_received"],
        bytes_total=run["bytes_total"],
    )
    run["id"] = str(run["id"])
    run["rows_per_s"] = speed.rows_per_s
    run["eta_seconds"] = speed.eta_seconds
    run["cancellable"] = run["state"] in CANCELLABLE and run["cancel_requested_at"] is None
    return run


def _visible(principal: Principal) -> tuple[str, dict[str, Any]]:
    if principal.has("platform_admin"):
        return "true", {}
    if principal.department is None:
        raise Forbidden("只有部门或平台管理机构可查看报送批次。", "Only departments see their batches.")
    return "provider_code = :dept", {"dept": principal.department}


async def list_runs(
    uow: UnitOfWork,
    principal: Principal,
    *,
    state: str | None,
    resource_code: str | None,
    batch_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where, params = _visible(principal)
    if state is not None:
        if state not in STATES:
            raise ValidationFailed(
                "没有这种批次状态。",
                "No such batch state.",
                details={"fields": [field_error("state", f"可选：{' / '.join(STATES)}", "unknown state")]},
            )
        where += " AND state = :state"
        params["state"] = state
    if resource_code:
        where += " AND resource_code = :code"
        params["code"] = resource_code
    if batch_id:
        where += " AND batch_id = :batch"
        params["batch"] = batch_id
    total = (await uow.execute(text(f"SELECT count(*) FROM batch_run WHERE {where}"), params)).scalar_one()
    rows = await uow.execute(
        text(f"SELECT {COLUMNS} FROM batch_run WHERE {where} ORDER BY started_at DESC, id LIMIT :limit OFFSET :offset"),
        {**params, "limit": limit, "offset": offset},
    )
    now = uow.clock.now()
    return [shown(r, now) for r in rows], int(total)


async def get_run(uow: UnitOfWork, principal: Principal, run_id: uuid.UUID) -> dict[str, Any]:
    where, params = _visible(principal)
    row = (
        await uow.execute(text(f"SELECT {COLUMNS} FROM batch_run WHERE id = :id AND {where}"), {**params, "id": run_id})
    ).one_or_none()
    if row is None:
        raise NotFound("没有这个批次。", "No such batch.", code="batch_not_found")
    return shown(row, uow.clock.now())


async def request_cancel(uow: UnitOfWork, principal: Principal, run_id: uuid.UUID) -> dict[str, Any]:
    """The provider's own running batch only; the batch stops at its next chunk and leaves nothing."""
    row = (
        await uow.execute(
            text(
                "SELECT provider_code, resource_code, batch_id, state, cancel_requested_at FROM batch_run "
                "WHERE id = :id FOR UPDATE"
            ),
            {"id": run_id},
        )
    ).one_or_none()
    if row is None or row.provider_code != principal.department:
        # Another department's batch is not even said to exist.
        raise NotFound("没有这个批次。", "No such batch.", code="batch_not_found")
    if row.state not in CANCELLABLE:
        raise Conflict(
            "批次已在入库或已结束，不能取消。",
            "The batch is already being applied or has ended; it cannot be cancelled.",
            code="batch_not_cancellable",
            details={"state": row.state},
        )
    if row.cancel_requested_at is None:
        now = uow.clock.now()
        await uow.execute(
            text("UPDATE batch_run SET cancel_requested_at = :at WHERE id = :id"), {"id": run_id, "at": now}
        )
        uow.emit(
            events.BATCH_CANCEL_REQUESTED,
            row.resource_code,
            events.BatchCancelRequested(
                run_id=str(run_id),
                batch_id=row.batch_id,
                resource_code=row.resource_code,
                provider_code=row.provider_code,
                actor=principal.subject,
                at=now,
            ),
        )
    return await get_run(uow, principal, run_id)


INTERRUPTED_ERROR = {
    "code": INTERRUPTED,
    "message": "处理该批次的服务进程意外中止，整批未入库，请重新报送。",
    "message_en": "The service process running this batch died; nothing was applied. Send it again.",
    "details": {},
}


async def sweep_interrupted(uow: UnitOfWork) -> list[str]:
    """Runs whose process is gone: marked failed (`interrupted`), their leftover session ended. The ids."""
    swept = []
    running = await uow.execute(
        text("SELECT id, backend_pid, backend_started_at FROM batch_run WHERE finished_at IS NULL AND state = ANY(:s)"),
        {"s": list(RUNNING)},
    )
    for run in running.all():
        key = run_lock(run.id)
        if not (await uow.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar_one():
            continue  # its process still holds it: running
        try:
            if run.backend_pid is not None:
                await uow.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = :pid "
                        "AND backend_start = :started"
                    ),
                    {"pid": run.backend_pid, "started": run.backend_started_at},
                )
            now = uow.clock.now()
            await uow.execute(
                text(
                    "UPDATE batch_run SET state = :failed, error = CAST(:e AS jsonb), updated_at = :at, "
                    "finished_at = :at WHERE id = :id AND finished_at IS NULL"
                ),
                {"id": run.id, "failed": FAILED, "e": json.dumps(INTERRUPTED_ERROR, ensure_ascii=False), "at": now},
            )
            swept.append(str(run.id))
        finally:
            await uow.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    return swept


async def mark_interrupted(uow: UnitOfWork) -> None:
    """The job (and the start-up step): sweep, and say which batches were found interrupted."""
    swept = await sweep_interrupted(uow)
    if swept:
        log.warning("batches interrupted by a lost process, marked failed: %s", ", ".join(swept))
