"""What audit-svc emits (topic `<prefix>.audit`), each type registered with its payload schema.

What it consumes — every event of every topic — is handled in ingest.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from govshare_common.db import UnitOfWork
from govshare_common.events import EventRegistry

registry = EventRegistry()

NOTICE_OPENED = "audit.notice.opened"
NOTICE_ANSWERED = "audit.notice.answered"
NOTICE_CLOSED = "audit.notice.closed"
NOTICE_ESCALATED = "audit.notice.escalated"
CHECKPOINT_SIGNED = "audit.checkpoint.signed"
PARTITION_DROPPED = "audit.partition.dropped"
COMPLAINT_REGISTERED = "audit.complaint.registered"
COMPLAINT_ANSWERED = "audit.complaint.answered"
NOTICE_DEADLINE_MOVED = "audit.notice.deadline_moved"
COMPLAINT_DEADLINE_MOVED = "audit.complaint.deadline_moved"
ACCOUNTABLE_CHANGED = "audit.accountable.changed"
REPORT_SUBMITTED = "audit.report.submitted"
EVALUATION_PUBLISHED = "audit.evaluation.published"
SYSTEM_CHANGED = "audit.system.changed"


class NoticeOpened(BaseModel):
    notice_id: str
    number: str
    department_code: str
    violation: str
    reference: str
    description: str
    opened_on: date
    working_days: int
    due_on: date
    source_event_id: str | None = Field(description="the event that showed the violation; null when reported")
    reported_by: str | None = Field(description="the department that reported a use beyond purpose")


class DeadlineMoved(BaseModel):
    id: str = Field(description="the notice's or complaint's id")
    department_code: str | None
    previous_due_on: date
    due_on: date
    calendar_year: int


class AccountableChanged(BaseModel):
    department_code: str
    role: str = Field(description="head_of_department | chief_data_officer | resource_administrator")
    name: str
    title: str | None
    actor: str


class ReportSubmitted(BaseModel):
    report_id: str
    department_code: str
    kind: str = Field(description="yearly | monthly")
    year: int
    month: int | None
    due_on: date
    late: bool
    actor: str


class EvaluationPublished(BaseModel):
    year: int
    departments: int
    average_score: float | None
    actor: str


class SystemChanged(BaseModel):
    system_id: str
    department_code: str
    name: str
    legacy: bool
    status: str
    connected_on: date | None
    actor: str


class NoticeAnswered(BaseModel):
    notice_id: str
    department_code: str
    answered_by: str
    answered_at: datetime


class NoticeDecided(BaseModel):
    notice_id: str
    department_code: str
    decided_by: str
    note: str
    due_on: date


class CheckpointSigned(BaseModel):
    checkpoint_id: int
    position: int
    hash: str = Field(description="hex SHA-256 chain head at position")
    recorded_at: str = Field(description="the head's recorded_at, ISO 8601, as signed")
    kid: str
    signature: str = Field(description="hex Ed25519 signature of the checkpoint message")


class PartitionDropped(BaseModel):
    partition: str
    month: str
    first_position: int | None
    last_position: int | None
    entries: int
    checkpoint_id: int | None
    retention_years: int


class ComplaintRegistered(BaseModel):
    complaint_id: str
    number: str
    department_code: str | None
    received_on: date
    due_on: date
    channel: str


class ComplaintAnswered(BaseModel):
    complaint_id: str
    number: str
    department_code: str | None
    answered_by: str
    answered_on: date


registry.register(NOTICE_OPENED, NoticeOpened, "a rectification notice was issued to a department")
registry.register(NOTICE_ANSWERED, NoticeAnswered, "the department answered a rectification notice")
registry.register(NOTICE_CLOSED, NoticeDecided, "the platform office closed a rectification notice")
registry.register(NOTICE_ESCALATED, NoticeDecided, "the platform office escalated a rectification notice")
registry.register(CHECKPOINT_SIGNED, CheckpointSigned, "the audit chain head was signed with the platform key")
registry.register(PARTITION_DROPPED, PartitionDropped, "a month of audit log past retention was dropped")
registry.register(COMPLAINT_REGISTERED, ComplaintRegistered, "a written complaint was registered")
registry.register(COMPLAINT_ANSWERED, ComplaintAnswered, "a written complaint was answered in writing")
registry.register(NOTICE_DEADLINE_MOVED, DeadlineMoved, "a year's holidays entered moved a notice's deadline")
registry.register(COMPLAINT_DEADLINE_MOVED, DeadlineMoved, "a year's holidays entered moved a complaint's deadline")
registry.register(ACCOUNTABLE_CHANGED, AccountableChanged, "a department's accountable person was filed or changed")
registry.register(REPORT_SUBMITTED, ReportSubmitted, "a department submitted its yearly report or monthly progress")
registry.register(EVALUATION_PUBLISHED, EvaluationPublished, "the platform office published a yearly evaluation")
registry.register(SYSTEM_CHANGED, SystemChanged, "a department's information system was registered or changed")


def emit_checkpoint(uow: UnitOfWork, signed: dict[str, Any]) -> None:
    uow.emit(
        CHECKPOINT_SIGNED,
        f"checkpoint-{signed['id']}",
        CheckpointSigned(
            checkpoint_id=signed["id"],
            position=signed["position"],
            hash=signed["hash"],
            recorded_at=signed["recorded_at"],
            kid=signed["kid"],
            signature=signed["signature"],
        ),
    )
