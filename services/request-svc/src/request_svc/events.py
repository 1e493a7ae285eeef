"""What request-svc emits (topic `<prefix>.request`) and the catalog projection it keeps from catalog events.

Payloads follow docs/event-contracts.md: grant.* exactly, request.* with the common fields every consumer
reads, plus what each step adds. Subjects are the request id, grant id or transfer id.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text

from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope, EventRegistry

registry = EventRegistry()

SUBMITTED = "request.submitted"
INFO_REQUESTED = "request.info_requested"
INFO_PROVIDED = "request.info_provided"
APPROVED = "request.approved"
REJECTED = "request.rejected"
ESCALATED = "request.escalated"
DECIDED = "request.decided"
OVERDUE = "request.overdue"
DUE_SOON = "request.due_soon"
WITHDRAWN = "request.withdrawn"
DEADLINE_MOVED = "request.deadline_moved"
GRANT_ISSUED = "grant.issued"
GRANT_REVOKED = "grant.revoked"
GRANT_EXPIRED = "grant.expired"
TRANSFER_REQUESTED = "transfer.requested"
TRANSFER_CONSENTED = "transfer.consented"
TRANSFER_APPROVED = "transfer.approved"
TRANSFER_REFUSED = "transfer.refused"
RESTRICTION_IMPOSED = "restriction.imposed"
RESTRICTION_LIFTED = "restriction.lifted"
MAJOR_DECISION_REQUESTED = "major_decision.requested"
MAJOR_DECISION_CONSENTED = "major_decision.consented"
MAJOR_DECISION_REFUSED = "major_decision.refused"
OPEN_DATA_DEMAND_FILED = "open_data_demand.filed"
OPEN_DATA_DEMAND_ANSWERED = "open_data_demand.answered"
OPEN_DATA_DEMAND_OVERDUE = "open_data_demand.overdue"
OPEN_DATA_DEMAND_DEADLINE_MOVED = "open_data_demand.deadline_moved"
FORWARDED = "request.forwarded"
FORWARD_DELIVERED = "request.forward_delivered"
FORWARD_REFUSED = "request.forward_refused"
RECEIVED = "request.received"
ORIGIN_REPORTED = "request.origin_reported"


class RequestEvent(BaseModel):
    request_id: str
    consumer_code: str
    provider_code: str
    resource_code: str
    state: str
    due_date: date | None = Field(description="the current deadline (the day the answer is due)")
    actor: str = Field(description="the principal's subject, or 'system' for jobs")


class RequestSubmitted(RequestEvent):
    share_type: str
    items: list[str]
    purposes: list[str]
    escalation_level: int = Field(description="-1: the provider reviews; >=0: straight to that escalation step")
    profile: str | None = Field(
        default=None, description="the profile it is handled under: its provider's jurisdiction's (issue 16 item 6)"
    )


class InfoRequested(RequestEvent):
    question: str


class InfoProvided(RequestEvent):
    previous_due_date: date | None
    paused_working_days: int = Field(description="working days the consumer took; the deadline moved by these")


class RequestApproved(RequestEvent):
    grant_id: str
    items: list[str]


class RequestRejected(RequestEvent):
    reason: str


class RequestEscalated(RequestEvent):
    level: int
    step: str = Field(description="negotiation | coordinator | leading_group")
    step_label: str
    reason: str
    written_application: bool = Field(default=False, description="a written application came with it")


class RequestDecided(RequestEvent):
    level: int
    step: str
    outcome: str = Field(description="approve | reject")
    reason: str
    grant_id: str | None
    binding: bool


class RequestOverdue(RequestEvent):
    days_late: int
    awaiting: str = Field(description="provider | platform_office: who failed to answer in time")


class RequestWithdrawn(RequestEvent):
    pass


class DeadlineMoved(RequestEvent):
    previous_due_date: date
    calendar_year: int = Field(description="the year whose holiday arrangement was entered or corrected")


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
    consumer_platform: str | None = Field(
        default=None,
        description="the peer platform the consumer's request came through (a cross-level grant); None: this one's",
    )


class GrantRevoked(BaseModel):
    grant_id: str
    consumer_code: str
    resource_code: str
    reason: str
    revoked_by: str = Field(description="department code of the revoker ('platform' for the platform office)")
    actor: str


class GrantExpired(BaseModel):
    grant_id: str
    consumer_code: str
    resource_code: str
    expired_at: datetime


class TransferEvent(BaseModel):
    transfer_id: str
    grant_id: str
    consumer_code: str
    provider_code: str
    third_party: str
    state: str
    actor: str


class TransferConsented(TransferEvent):
    party: str = Field(description="platform_office | provider")


class TransferRefused(TransferEvent):
    party: str
    reason: str


class MajorDecisionEvent(BaseModel):
    decision_id: str
    grant_id: str
    consumer_code: str
    provider_code: str
    resource_code: str
    state: str = Field(description="pending | consented | refused")
    reason: str | None
    actor: str


class RestrictionEvent(BaseModel):
    restriction_id: str
    department_code: str
    reason: str = Field(description="why imposed, or (lifted) why lifted")
    lapses: int = Field(description="the missed updates the restriction rests on")
    actor: str


class OpenDataDemandEvent(BaseModel):
    """A public demand for open data (004 Art.20, 003 Art.31); the requester's name and contact stay in the row."""

    demand_id: str
    department_code: str = Field(description="who owes the answer: the provider, or the platform office")
    resource_code: str | None
    due_on: date | None = Field(description="null where the profile sets no reply time")
    state: str = Field(description="pending | answered")
    actor: str


class OpenDataDemandOverdue(OpenDataDemandEvent):
    days_late: int


class OpenDataDemandDeadlineMoved(OpenDataDemandEvent):
    previous_due_on: date
    calendar_year: int


class RequestForwarded(RequestEvent):
    origin_platform: str = Field(description="division code of the platform that owns the resource and decides")
    next_hop: str = Field(description="division code of the peer the request goes to first (parent or child)")
    applicant_platform: str = Field(description="division code of the applying department's platform")


class ForwardDelivered(RequestEvent):
    origin_platform: str
    origin_request_id: str = Field(description="the request's id at the platform it was forwarded to")


class ForwardRefused(RequestEvent):
    origin_platform: str
    code: str = Field(description="the refusing platform's error code, e.g. unknown_items, own_resource")
    reason: str


class RequestReceived(RequestEvent):
    applicant_platform: str = Field(description="division code of the applying department's platform")
    from_peer: str = Field(description="the peer that forwarded it here (the applicant's platform or a hop)")
    peer_request_id: str = Field(description="the request's id at the peer that forwarded it")


class OriginReported(RequestEvent):
    origin_platform: str
    origin_request_id: str
    decision_reason: str | None
    grant_status: str | None = Field(description="active | revoked | expired, once the owner issued a grant")


for _type, _model, _description in (
    (FORWARDED, RequestForwarded, "a department applied for another platform's resource; the request is on its way"),
    (FORWARD_DELIVERED, ForwardDelivered, "the next platform on the way took the forwarded request"),
    (FORWARD_REFUSED, ForwardRefused, "the owner's platform refused the forwarded request, with its reason"),
    (RECEIVED, RequestReceived, "a request forwarded by a peer platform was received here"),
    (ORIGIN_REPORTED, OriginReported, "the deciding platform reported a change: state, due date, decision, grant"),
    (SUBMITTED, RequestSubmitted, "a consumer applied for a conditional or not-shared resource"),
    (INFO_REQUESTED, InfoRequested, "the provider asked for more information; the clock stopped"),
    (INFO_PROVIDED, InfoProvided, "the consumer answered; the clock restarted and the deadline moved"),
    (APPROVED, RequestApproved, "the provider approved; a grant was issued"),
    (REJECTED, RequestRejected, "the provider refused, with its reason"),
    (ESCALATED, RequestEscalated, "the consumer took the request to negotiation or coordination"),
    (DECIDED, RequestDecided, "a decision at an escalation step (the coordinator's binds)"),
    (OVERDUE, RequestOverdue, "the deadline passed without an answer (无故不受理共享申请)"),
    (DUE_SOON, RequestEvent, "one working day is left to answer"),
    (WITHDRAWN, RequestWithdrawn, "the consumer withdrew its request"),
    (DEADLINE_MOVED, DeadlineMoved, "a year's holidays were entered or corrected; the running deadline was recounted"),
    (GRANT_ISSUED, GrantIssued, "a grant was issued"),
    (GRANT_REVOKED, GrantRevoked, "a grant was revoked by the provider or the platform office"),
    (GRANT_EXPIRED, GrantExpired, "a grant reached its end"),
    (TRANSFER_REQUESTED, TransferEvent, "a consumer asked to pass granted data to a third party"),
    (TRANSFER_CONSENTED, TransferConsented, "the platform office or the provider approved a transfer"),
    (TRANSFER_APPROVED, TransferEvent, "both approved: the transfer may take place"),
    (TRANSFER_REFUSED, TransferRefused, "the platform office or the provider refused a transfer"),
    (RESTRICTION_IMPOSED, RestrictionEvent, "the platform office restricted a department's rights (001 Art.21)"),
    (RESTRICTION_LIFTED, RestrictionEvent, "the platform office lifted a department's restriction"),
    (MAJOR_DECISION_REQUESTED, MajorDecisionEvent, "a consumer cited shared data in a major decision, asking consent"),
    (MAJOR_DECISION_CONSENTED, MajorDecisionEvent, "the provider consented to its data's use in a major decision"),
    (MAJOR_DECISION_REFUSED, MajorDecisionEvent, "the provider refused its data's use in a major decision"),
    (OPEN_DATA_DEMAND_FILED, OpenDataDemandEvent, "the public filed a demand for open data"),
    (OPEN_DATA_DEMAND_ANSWERED, OpenDataDemandEvent, "the provider or the platform office answered a demand"),
    (OPEN_DATA_DEMAND_OVERDUE, OpenDataDemandOverdue, "a demand for open data was not answered in time"),
    (
        OPEN_DATA_DEMAND_DEADLINE_MOVED,
        OpenDataDemandDeadlineMoved,
        "a year's holidays were entered or corrected; an unanswered demand's due date was recounted",
    ),
):
    registry.register(_type, _model, _description)


# --- the catalog projection ----------------------------------------------------------------------------------

catalog = Subscription(source="catalog")


def _projection_row(data: dict[str, Any], status: str) -> dict[str, Any]:
    snapshot = data["published"]
    return {
        "code": str(data.get("code") or snapshot["code"]),
        "resource_id": str(data["resource_id"]),
        "name": str(snapshot.get("name") or ""),
        "provider_code": str(data["provider_code"]),
        "provider_name": str(data.get("provider_name") or snapshot.get("provider_name") or ""),
        "share_type": str(snapshot["share_type"]),
        "status": status,
        "data_items": json.dumps(
            [
                {
                    "name": i["name"],
                    "label": i.get("label"),
                    "sensitivity": i.get("sensitivity"),
                    "masking_rule": i.get("masking_rule"),
                }
                for i in snapshot.get("data_items", [])
            ],
            ensure_ascii=False,
        ),
        "legal_basis": snapshot.get("legal_basis"),
        "share_conditions": snapshot.get("share_conditions"),
        "version": int(data.get("version") or 0),
    }


async def _upsert(uow: UnitOfWork, row: dict[str, Any]) -> None:
    await uow.execute(
        text(
            "INSERT INTO resource_projection (code, resource_id, name, provider_code, provider_name, share_type, "
            "status, data_items, legal_basis, share_conditions, version, updated_at) VALUES (:code, :resource_id, "
            ":name, :provider_code, :provider_name, :share_type, :status, CAST(:data_items AS jsonb), :legal_basis, "
            ":share_conditions, :version, now()) ON CONFLICT (code) DO UPDATE SET resource_id = excluded.resource_id, "
            "name = excluded.name, provider_code = excluded.provider_code, provider_name = excluded.provider_name, "
            "share_type = excluded.share_type, status = excluded.status, data_items = excluded.data_items, "
            "legal_basis = excluded.legal_basis, share_conditions = excluded.share_conditions, "
            "version = excluded.version, updated_at = now()"
        ),
        row,
    )


@catalog.on("catalog.resource.published", "catalog.resource.updated")
async def _published(env: Envelope, uow: UnitOfWork) -> None:
    await _upsert(uow, _projection_row(env.data, "published"))


@catalog.on("catalog.resource.withdrawn")
async def _withdrawn(env: Envelope, uow: UnitOfWork) -> None:
    await _upsert(uow, _projection_row(env.data, "withdrawn"))


# --- update lapses: the ground a rights restriction rests on (001 Art.21) -----------------------------------

exchange = Subscription(source="exchange")


async def _lapse(
    uow: UnitOfWork, env: Envelope, *, department: Any, kind: str, resource: Any, description: str
) -> None:
    if not department:
        return
    await uow.execute(
        text(
            "INSERT INTO update_lapse (event_id, department_code, kind, resource_code, description, occurred_at) "
            "VALUES (CAST(:id AS uuid), :d, :k, :r, :desc, :at) ON CONFLICT (event_id) DO NOTHING"
        ),
        {"id": env.id, "d": str(department), "k": kind, "r": resource, "desc": description, "at": env.time},
    )


@catalog.on("catalog.obligation.overdue")
async def _catalog_overdue(env: Envelope, uow: UnitOfWork) -> None:
    d = env.data
    await _lapse(
        uow,
        env,
        department=d.get("department_code"),
        kind="catalog_overdue",
        resource=d.get("resource_code"),
        description=f"目录未按时更新：{d.get('description') or d.get('reason') or ''}（期限 {d.get('due_on')}）",
    )


@exchange.on("exchange.resource.stale")
async def _data_stale(env: Envelope, uow: UnitOfWork) -> None:
    d = env.data
    await _lapse(
        uow,
        env,
        department=d.get("provider_code"),
        kind="data_stale",
        resource=d.get("resource_code"),
        description=f"信息资源 {d.get('resource_code')} 未按更新周期更新数据（应于 {d.get('due_at')} 前更新）",
    )
