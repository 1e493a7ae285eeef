"""The quarantine's table: events a consumer set aside because their handler failed, and the events of the
same aggregate that wait behind them (so one aggregate's events are still handled in order)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text

from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope, EventRegistry

PIPELINE_EVENTS = EventRegistry()


class QuarantineChanged(BaseModel):
    source: str
    seq: int
    event_id: str
    type: str
    subject: str
    error: str | None = None
    by: str | None = None


PIPELINE_EVENTS.register("pipeline.event.quarantined", QuarantineChanged, "一条事件处理失败，已隔离待处理")
PIPELINE_EVENTS.register("pipeline.event.retried", QuarantineChanged, "隔离的事件经平台管理员重试后已处理")
PIPELINE_EVENTS.register("pipeline.event.skipped", QuarantineChanged, "隔离的事件经平台管理员决定跳过")


@dataclass(frozen=True)
class QuarantinedEvent:
    source: str
    seq: int
    partition: int | None
    event_id: str
    type: str
    subject: str
    error: str
    blocked_by: int | None
    attempts: int
    status: str
    quarantined_at: str
    resolved_at: str | None
    resolved_by: str | None

    @classmethod
    def from_row(cls, row: Any) -> QuarantinedEvent:
        return cls(
            source=row.source,
            seq=row.seq,
            partition=row.partition,
            event_id=str(row.event_id),
            type=row.type,
            subject=row.subject,
            error=row.error,
            blocked_by=row.blocked_by,
            attempts=row.attempts,
            status=row.status,
            quarantined_at=row.quarantined_at.isoformat(),
            resolved_at=row.resolved_at.isoformat() if row.resolved_at else None,
            resolved_by=row.resolved_by,
        )


_COLUMNS = (
    "source, seq, partition, event_id, type, subject, error, blocked_by, attempts, status, quarantined_at, "
    "resolved_at, resolved_by"
)


async def held_subjects(uow: UnitOfWork, source: str, partition: int) -> dict[str, int]:
    """Aggregates of this source partition with an event waiting in quarantine: subject -> its first seq."""
    rows = await uow.execute(
        text(
            "SELECT subject, min(seq) FROM inbox_quarantine WHERE source = :s AND status = 'held' "
            "AND partition = :p GROUP BY subject"
        ),
        {"s": source, "p": partition},
    )
    return {r[0]: int(r[1]) for r in rows}


async def set_aside(uow: UnitOfWork, source: str, env: Envelope, *, error: str, blocked_by: int | None = None) -> None:
    await uow.execute(
        text(
            "INSERT INTO inbox_quarantine (source, seq, partition, event_id, type, subject, envelope, error, "
            "blocked_by) VALUES (:source, :seq, :partition, CAST(:event_id AS uuid), :type, :subject, "
            "CAST(:envelope AS jsonb), :error, :blocked_by) ON CONFLICT (source, seq) DO NOTHING"
        ),
        {
            "source": source,
            "seq": env.seq,
            "partition": env.partition,
            "event_id": env.id,
            "type": env.type,
            "subject": env.subject,
            "envelope": env.model_dump_json(),
            "error": error,
            "blocked_by": blocked_by,
        },
    )
    uow.emit(
        "pipeline.event.quarantined",
        env.subject,
        QuarantineChanged(source=source, seq=env.seq, event_id=env.id, type=env.type, subject=env.subject, error=error),
    )


async def list_quarantined(uow: UnitOfWork, *, status: str | None, limit: int) -> list[QuarantinedEvent]:
    rows = await uow.execute(
        text(
            f"SELECT {_COLUMNS} FROM inbox_quarantine WHERE (CAST(:status AS text) IS NULL OR status = :status) "
            "ORDER BY quarantined_at DESC, source, seq DESC LIMIT :limit"
        ),
        {"status": status, "limit": limit},
    )
    return [QuarantinedEvent.from_row(r) for r in rows]


async def held_counts(uow: UnitOfWork) -> dict[str, int]:
    rows = await uow.execute(
        text("SELECT source, count(*) FROM inbox_quarantine WHERE status = 'held' GROUP BY source")
    )
    return {r[0]: int(r[1]) for r in rows}


async def lock_entry(uow: UnitOfWork, source: str, seq: int) -> tuple[QuarantinedEvent, Envelope] | None:
    row = (
        await uow.execute(
            text(
                f"SELECT {_COLUMNS}, envelope::text AS envelope FROM inbox_quarantine "
                "WHERE source = :s AND seq = :seq FOR UPDATE"
            ),
            {"s": source, "seq": seq},
        )
    ).one_or_none()
    if row is None:
        return None
    return QuarantinedEvent.from_row(row), Envelope.model_validate(json.loads(row.envelope))


async def earlier_held(uow: UnitOfWork, source: str, subject: str, seq: int) -> int | None:
    """The first seq of the same aggregate still held before `seq`, if any (that one must go first)."""
    value = (
        await uow.execute(
            text(
                "SELECT min(seq) FROM inbox_quarantine WHERE source = :s AND subject = :subject "
                "AND status = 'held' AND seq < :seq"
            ),
            {"s": source, "subject": subject, "seq": seq},
        )
    ).scalar()
    return int(value) if value is not None else None


async def resolve(uow: UnitOfWork, entry: QuarantinedEvent, *, status: str, by: str) -> None:
    await uow.execute(
        text(
            "UPDATE inbox_quarantine SET status = :status, resolved_at = now(), resolved_by = :by "
            "WHERE source = :s AND seq = :seq"
        ),
        {"status": status, "by": by, "s": entry.source, "seq": entry.seq},
    )
    uow.emit(
        f"pipeline.event.{status}",
        entry.subject,
        QuarantineChanged(
            source=entry.source, seq=entry.seq, event_id=entry.event_id, type=entry.type, subject=entry.subject, by=by
        ),
    )


async def record_failed_retry(uow: UnitOfWork, source: str, seq: int, error: str) -> None:
    await uow.execute(
        text(
            "UPDATE inbox_quarantine SET attempts = attempts + 1, error = :error, blocked_by = NULL "
            "WHERE source = :s AND seq = :seq"
        ),
        {"error": error, "s": source, "seq": seq},
    )
