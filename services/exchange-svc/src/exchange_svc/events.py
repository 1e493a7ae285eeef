"""What exchange-svc emits (topic `<prefix>.exchange`), each type registered with its payload schema.

The payloads another service reads are fixed in docs/event-contracts.md; fields beyond those are additions.
No event carries personal data: subjects appear only as keyed hashes (hash_identifier with settings.hash_key).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from govshare_common.events import EventRegistry

registry = EventRegistry()

ACCESS = "exchange.access"
BATCH_INGESTED = "exchange.batch.ingested"
BATCH_CANCEL_REQUESTED = "exchange.batch.cancel_requested"
RESOURCE_STALE = "exchange.resource.stale"
DISPUTE_OPENED = "exchange.dispute.opened"
DISPUTE_ANSWERED = "exchange.dispute.answered"
DISPUTE_CORRECTED = "exchange.dispute.corrected"
DISPUTE_OVERDUE = "exchange.dispute.overdue"
DISPUTE_DEADLINE_MOVED = "exchange.dispute.deadline_moved"
CONFLICT_OPENED = "exchange.conflict.opened"
CONFLICT_ARBITRATED = "exchange.conflict.arbitrated"
EXPORT_CREATED = "exchange.export.created"
EXPORT_COMPLETED = "exchange.export.completed"
SOURCE_DECLARED = "exchange.source.declared"
KEY_DECLARED = "exchange.key.declared"
SUBSCRIPTION_CREATED = "exchange.subscription.created"
SUBSCRIPTION_CANCELLED = "exchange.subscription.cancelled"
FILE_UPLOADED = "exchange.file.uploaded"
CONNECTOR_REGISTERED = "exchange.connector.registered"


class Access(BaseModel):
    access_id: str
    kind: Literal["query", "export", "feed"]
    department_code: str | None
    principal: str
    grant_id: str | None
    resource_code: str
    purpose: str | None
    rows: int
    subjects_hashed: list[str]
    at: datetime
    basis: str = Field(description="why it was allowed: provider | unconditional | grant | cross_level | relay")
    origin_platform: str | None = Field(
        default=None,
        description="a cross-level query, feed read or export page: the platform that owns the resource and served it",
    )
    via_platform: str | None = Field(
        default=None, description="a cross-level query through a platform in between: the peer it was sent to"
    )
    consumer_platform: str | None = Field(
        default=None, description="a relayed query (basis relay): the platform of the department that asked"
    )


class BatchCancelRequested(BaseModel):
    run_id: str
    batch_id: str
    resource_code: str
    provider_code: str
    actor: str
    at: datetime


class BatchIngested(BaseModel):
    batch_id: str
    resource_code: str
    provider_code: str
    inserted: int
    updated: int
    deleted: int
    at: datetime
    unchanged: int = 0
    conflicts: int = 0
    rows: int = 0


class ResourceStale(BaseModel):
    resource_code: str
    provider_code: str
    update_cycle: str
    last_ingest_at: datetime | None
    due_at: datetime


class DisputeEvent(BaseModel):
    dispute_id: str
    resource_code: str
    provider_code: str
    consumer_code: str
    state: str
    due_date: date
    item: str
    copied_to_authority: bool = Field(description="the platform office is copied (Beijing, 004 Art.19)")


class DisputeDeadlineMoved(DisputeEvent):
    previous_due_date: date
    calendar_year: int


class ConflictEvent(BaseModel):
    conflict_id: str
    resource_code: str
    item: str
    subject_hashed: str
    state: str
    authoritative_provider: str
    candidate_provider: str
    decision: str | None = None


class ExportCreated(BaseModel):
    export_id: str
    department_code: str
    resource_code: str
    total_rows: int
    format: str
    origin_platform: str | None = Field(
        default=None, description="cross-level: the platform that owns the resource (the owner keeps its own)"
    )


class ExportCompleted(BaseModel):
    export_id: str
    department_code: str
    resource_code: str
    rows: int
    fingerprint: str
    origin_platform: str | None = Field(
        default=None, description="cross-level: the platform that owns the resource (the owner keeps its own)"
    )


class SourceDeclared(BaseModel):
    resource_code: str
    item: str
    provider_code: str
    actor: str


class KeyDeclared(BaseModel):
    resource_code: str
    key_items: list[str]
    actor: str


class SubscriptionChanged(BaseModel):
    subscription_id: str
    resource_code: str
    department_code: str
    purpose: str
    state: str
    origin_platform: str | None = Field(
        default=None, description="cross-level: the platform that owns the resource (the owner keeps its own)"
    )


class ConnectorRegistered(BaseModel):
    department_code: str
    name: str
    serves: list[str]
    serve_url: str | None


class FileUploaded(BaseModel):
    file_id: str
    resource_code: str
    provider_code: str
    name: str
    size: int
    sha256: str


registry.register(ACCESS, Access, "a query, export or feed read served hosted data")
registry.register(BATCH_INGESTED, BatchIngested, "a provider's batch was applied (counts only)")
registry.register(
    BATCH_CANCEL_REQUESTED,
    BatchCancelRequested,
    "a provider asked to stop its running batch (nothing of it is applied)",
)
registry.register(RESOURCE_STALE, ResourceStale, "a hosted resource missed its update cycle")
for _type, _what in (
    (DISPUTE_OPENED, "a consumer flagged a record's item"),
    (DISPUTE_ANSWERED, "the provider confirmed the disputed value"),
    (DISPUTE_CORRECTED, "the provider corrected the disputed value"),
    (DISPUTE_OVERDUE, "the provider did not answer a dispute in time"),
):
    registry.register(_type, DisputeEvent, _what)
registry.register(
    DISPUTE_DEADLINE_MOVED,
    DisputeDeadlineMoved,
    "a year's holidays were entered or corrected; an open dispute's due date was recounted",
)
registry.register(CONFLICT_OPENED, ConflictEvent, "a non-authoritative provider sent a different value")
registry.register(CONFLICT_ARBITRATED, ConflictEvent, "the platform office decided a single-source conflict")
registry.register(EXPORT_CREATED, ExportCreated, "a bulk download was started")
registry.register(EXPORT_COMPLETED, ExportCompleted, "a bulk download was streamed to its end")
registry.register(SOURCE_DECLARED, SourceDeclared, "the platform office declared an item's authoritative provider")
registry.register(KEY_DECLARED, KeyDeclared, "a resource's record key was declared")
registry.register(SUBSCRIPTION_CREATED, SubscriptionChanged, "a consumer subscribed to a resource's changes")
registry.register(SUBSCRIPTION_CANCELLED, SubscriptionChanged, "a subscription was cancelled")
registry.register(FILE_UPLOADED, FileUploaded, "a provider uploaded a file to a file resource")
registry.register(
    CONNECTOR_REGISTERED, ConnectorRegistered, "a front-end connector registered or changed what it serves"
)
