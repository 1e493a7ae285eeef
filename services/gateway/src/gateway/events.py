"""What the gateway emits, and the projections it keeps from request-svc's grants and catalog-svc's resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, field_validator
from sqlalchemy import text

from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope, EventRegistry
from govshare_common.text_input import printable

from gateway.live_state import notify_change

registry = EventRegistry()


@registry.event("gateway.access", "a request reached the gateway: allowed or denied")
class Access(BaseModel):
    request_id: str
    at: datetime
    principal: str | None
    principal_kind: str | None
    department: str | None
    client_id: str | None
    method: str
    route: str
    resource: str | None
    purpose: str | None
    subjects_hashed: list[str]
    outcome: str  # allowed | denied
    reason: str | None
    status: int
    latency_ms: float
    bytes_in: int
    bytes_out: int

    @field_validator("route", "method", "purpose", "reason", "resource", "principal", "client_id", mode="before")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        return printable(value) if isinstance(value, str) else value


@registry.event(
    "identity.department.changed", "a department was registered, filed, enabled, disabled or moved to a jurisdiction"
)
class DepartmentChanged(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None
    status: str
    filed: bool
    # The hosted jurisdiction it belongs to and that jurisdiction's profile; None: the platform's own.
    jurisdiction_code: str | None = None
    profile: str | None = None


@registry.event("identity.jurisdiction.registered", "a jurisdiction without a platform of its own is hosted here")
class JurisdictionRegistered(BaseModel):
    code: str
    name: str
    profile: str
    actor: str


@registry.event(
    "identity.principal.changed", "a user or machine client was created, changed, disabled or had its secret rotated"
)
class PrincipalChanged(BaseModel):
    principal_id: str
    kind: str  # user | client
    department_code: str | None
    roles: list[str]
    status: str
    change: str


@registry.event("identity.session.revoked", "a session was ended (logout or administrator)")
class SessionRevoked(BaseModel):
    session_id: str
    principal_id: str
    reason: str


@registry.event(
    "identity.second_factor.changed",
    "an administrator's second factor: enrolment started, enrolled, reset by another admin, a recovery code used",
)
class SecondFactorChanged(BaseModel):
    principal_id: str
    change: str  # enrolment_started | enrolled | reset | recovery_code_used
    by: str


@registry.event(
    "identity.signing_key.rotated", "a new token signing key signs; the previous one verifies until it retires"
)
class SigningKeyRotated(BaseModel):
    kid: str
    previous_kids: list[str]
    previous_retire_at: datetime | None


# --- projections -------------------------------------------------------------------------------------------

grants = Subscription(source="request")
resources = Subscription(source="catalog")


def _ts(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@grants.on("grant.issued")
async def _grant_issued(env: Envelope, uow: UnitOfWork) -> None:
    d = env.data
    purposes = d.get("purposes") or ([d["purpose"]] if d.get("purpose") else [])
    await uow.execute(
        text(
            "INSERT INTO grant_projection (grant_id, consumer_code, resource_code, purposes, valid_from, valid_until, "
            "status, updated_at) VALUES (:id, :consumer, :resource, :purposes, :vf, :vu, 'active', now()) "
            "ON CONFLICT (grant_id) DO UPDATE SET consumer_code = excluded.consumer_code, "
            "resource_code = excluded.resource_code, purposes = excluded.purposes, valid_from = excluded.valid_from, "
            "valid_until = excluded.valid_until, status = 'active', updated_at = now()"
        ),
        {
            "id": d["grant_id"],
            "consumer": d["consumer_code"],
            "resource": d["resource_code"],
            "purposes": purposes,
            "vf": _ts(d.get("valid_from")),
            "vu": _ts(d.get("valid_until")),
        },
    )
    await notify_change(uow.conn, "grant", d["grant_id"])


async def _grant_ended(env: Envelope, uow: UnitOfWork, status: str) -> None:
    grant_id = env.data["grant_id"]
    await uow.execute(
        text("UPDATE grant_projection SET status = :s, updated_at = now() WHERE grant_id = :id"),
        {"s": status, "id": grant_id},
    )
    await notify_change(uow.conn, "grant", grant_id)


@grants.on("grant.revoked")
async def _grant_revoked(env: Envelope, uow: UnitOfWork) -> None:
    await _grant_ended(env, uow, "revoked")


@grants.on("grant.expired")
async def _grant_expired(env: Envelope, uow: UnitOfWork) -> None:
    await _grant_ended(env, uow, "expired")


def _resource_fields(data: dict[str, Any]) -> tuple[str, str, str]:
    """Code, provider and share type from catalog-svc's event (the live version is under `published`)."""
    published = data["published"]
    return str(data.get("code") or published["code"]), str(data["provider_code"]), str(published["share_type"])


@resources.on("catalog.resource.published", "catalog.resource.updated")
async def _resource_published(env: Envelope, uow: UnitOfWork) -> None:
    code, provider, share_type = _resource_fields(env.data)
    await uow.execute(
        text(
            "INSERT INTO resource_projection (code, provider_code, share_type, status, updated_at) "
            "VALUES (:code, :provider, :share_type, 'published', now()) ON CONFLICT (code) DO UPDATE SET "
            "provider_code = excluded.provider_code, share_type = excluded.share_type, status = 'published', "
            "updated_at = now()"
        ),
        {"code": code, "provider": provider, "share_type": share_type},
    )
    await notify_change(uow.conn, "resource", code)


@resources.on("catalog.resource.withdrawn")
async def _resource_withdrawn(env: Envelope, uow: UnitOfWork) -> None:
    code = str(env.data.get("code") or env.data["published"]["code"])
    await uow.execute(
        text("UPDATE resource_projection SET status = 'withdrawn', updated_at = now() WHERE code = :code"),
        {"code": code},
    )
    await notify_change(uow.conn, "resource", code)
