"""Payloads of request-svc and exchange-svc exactly as docs/event-contracts.md fixes them, for the peer
producers that stand in for those services until they exist."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel

from govshare_common.events import Envelope, EventRegistry


class RequestEvent(BaseModel):
    request_id: str
    consumer_code: str
    provider_code: str
    resource_code: str
    state: str
    due_date: date | None
    actor: str


class RequestOverdue(RequestEvent):
    days_late: int


class GrantIssued(BaseModel):
    grant_id: str
    request_id: str | None
    consumer_code: str
    provider_code: str
    resource_id: str | None
    resource_code: str
    items: list[str]
    unmasked_items: list[str]
    purposes: list[str]
    scope: str
    conditions: list[str]
    valid_from: datetime | None
    valid_until: datetime | None


class ExchangeAccess(BaseModel):
    access_id: str
    kind: str
    department_code: str
    principal: str
    grant_id: str | None
    resource_code: str
    purpose: str
    rows: int
    subjects_hashed: list[str]
    at: datetime


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
    due_date: date | None


def request_registry() -> EventRegistry:
    registry = EventRegistry()
    for state in ("submitted", "approved", "rejected", "decided", "withdrawn", "escalated"):
        registry.register(f"request.{state}", RequestEvent)
    registry.register("request.overdue", RequestOverdue)
    registry.register("grant.issued", GrantIssued)
    return registry


def exchange_registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register("exchange.access", ExchangeAccess)
    registry.register("exchange.resource.stale", ResourceStale)
    for state in ("opened", "answered", "corrected", "overdue"):
        registry.register(f"exchange.dispute.{state}", DisputeEvent)
    return registry


def envelope(source: str, seq: int, type_: str, subject: str, payload: BaseModel, at: datetime) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        source=f"govshare/{source}",
        type=type_,
        time=at,
        subject=subject,
        seq=seq,
        data=payload.model_dump(mode="json"),
    )
