"""A request on its way to the platform that owns the resource, seen from the platforms it leaves: the
applicant's own, and any platform between (a relay). The request is stored here with the application to send
(`forwarding`), in the unit of work of the application itself with its event; the courier delivers it to the
next hop, retrying until that peer answers, and the owner's reports come back and are applied here.

Applied reports are whole states (the owner's latest, versioned by its time of change), so a report received
twice, or late after a newer one, changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from govshare_common.auth import Principal
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, Conflict, NotFound, ValidationFailed, field_error
from govshare_common.federation_codes import next_hop

from request_svc import events, restrictions, store
from request_svc.domain import Application
from request_svc.federation import store as fed_store
from request_svc.flows import event_fields as _event_fields

FORWARDED_PATH = "/api/v1/requests/federation/forwarded"
STATUS_PATH = "/api/v1/requests/federation/status"


def no_route(origin: str) -> AppError:
    return AppError(
        f"该信息资源属于平台 {origin}，本平台与其之间没有可转送共享申请的对端平台。",
        f"The resource belongs to platform {origin}; no registered peer leads there.",
        code="no_route_to_origin",
        status=409,
        details={"origin_platform": origin},
    )


def application_body(application: Application, *, resource_code: str, submitted_by: str) -> dict[str, Any]:
    """What travels to the owner: the application as the department made it (the owner checks it again)."""
    return {
        "resource_code": resource_code,
        "items": list(application.items),
        "purposes": list(dict.fromkeys(application.purposes)),
        "purpose_other": application.purpose_other,
        "scope": application.scope,
        "security_measures": application.security_measures,
        "business_matter": application.business_matter,
        "policy_basis": application.policy_basis,
        "valid_until": application.valid_until_wanted.isoformat() if application.valid_until_wanted else None,
        "written_application": application.written_application,
        "submitted_by": submitted_by,
    }


def _basic_problems(application: Application) -> list[dict[str, str]]:
    """What can be checked before the owner sees it (the items and rules are the owner's to check)."""
    problems = []
    if not application.items:
        problems.append(
            field_error("items", "请至少选择一个信息项。", "Choose at least one data item.", code="required")
        )
    for name, value in (
        ("scope", application.scope),
        ("security_measures", application.security_measures),
        ("business_matter", application.business_matter),
    ):
        if not value.strip():
            problems.append(field_error(name, "此项必填。", f"{name} is required.", code="required"))
    return problems


async def forward(
    uow: UnitOfWork,
    principal: Principal,
    mirrored: dict[str, Any],
    application: Application,
    *,
    applicant: dict[str, Any],
    renews_grant_id: str | None = None,
    from_peer: dict[str, Any] | None = None,
) -> str:
    """Store the request to forward towards the resource's origin platform; returns its id here.

    `applicant` is {platform, department_code, department_name} (platform None: this one, filled when sent);
    `from_peer` (a relay) is {division_code, request_id, idempotency_key} of the peer that forwarded it here.
    """
    if renews_grant_id is not None:
        raise Conflict(
            "跨平台授权的续期请重新提出申请。",
            "A cross-level grant is renewed by a new application.",
            code="cross_level_renewal",
        )
    if from_peer is None:
        await restrictions.ensure_may_apply(uow, application.consumer_code)  # a restriction here holds everywhere
    problems = _basic_problems(application)
    if problems:
        raise ValidationFailed(
            "共享申请未通过校验，请按 details 中列出的字段逐项修改。",
            "The share request did not validate; fix the fields listed in details.",
            details={"fields": problems},
        )
    origin = mirrored["origin_division"]
    peers = await fed_store.peers(uow.conn)
    if from_peer is not None:
        peers.pop(from_peer["division_code"], None)  # never back the way it came
    hop = next_hop(origin, mirrored["via_peer"], peers)
    if hop is None:
        raise no_route(origin)
    now, today = uow.clock.now(), china_date(uow.clock)
    request_id = str(uuid.uuid4())
    body = {
        **application_body(application, resource_code=mirrored["origin_code"], submitted_by=principal.subject),
        "origin_platform": origin,
        "applicant": applicant,
    }
    await store.insert_request(
        uow.conn,
        {
            "id": request_id,
            "consumer_code": application.consumer_code,
            # The provider is the owner's to name; until it answers, the owner platform stands for it.
            "provider_code": origin,
            "resource_code": mirrored["code"],
            "resource_id": mirrored["resource_id"],
            "resource_name": mirrored["code"],
            "share_type": "conditional",
            "items": list(application.items),
            "purposes": body["purposes"],
            "purpose_other": (application.purpose_other or "").strip() or None,
            "scope": application.scope.strip(),
            "security_measures": application.security_measures.strip(),
            "business_matter": application.business_matter.strip(),
            "policy_basis": (application.policy_basis or "").strip() or None,
            "valid_until_wanted": application.valid_until_wanted,
            "renews_grant_id": None,
            "state": "forwarding",
            "escalation_level": -1,
            "submitted_by": principal.subject,
            "submitted_at": now,
            "submitted_on": today,
            "deadline_wd": None,
            "due_date": None,
            "profile": None,
        },
    )
    fields: dict[str, Any] = {"origin_platform": origin, "next_hop": hop, "forward_body": body}
    if from_peer is not None:
        fields |= {
            "consumer_platform": from_peer["division_code"],
            "consumer_name": applicant.get("department_name"),
            "peer_request_id": from_peer["request_id"],
            "peer_idempotency_key": from_peer["idempotency_key"],
        }
    await fed_store.set_request(uow.conn, request_id, **fields)
    await store.add_history(
        uow.conn,
        request_id,
        action="forwarded",
        actor=principal.subject,
        department=principal.department,
        at=now,
        note=f"转送至平台 {origin}" + (f"（经 {hop}）" if hop != origin else ""),
    )
    row = await store.request(uow.conn, request_id)
    assert row is not None
    uow.emit(
        events.FORWARDED,
        request_id,
        events.RequestForwarded(
            **_event_fields(row, principal.subject),
            origin_platform=origin,
            next_hop=hop,
            applicant_platform=applicant.get("platform") or "",
        ),
    )
    return request_id


async def mirrored_resource(uow: UnitOfWork, code: str) -> dict[str, Any] | None:
    """The resource another platform owns that `code` names here (as the catalog shows it), if it is one."""
    found = await fed_store.mirrored(uow.conn, code)
    return found if found is not None and not found["withdrawn"] else None


# --- the next hop's answers ---------------------------------------------------------------------------------


async def refused(uow: UnitOfWork, request_id: str, *, peer: str, error: dict[str, Any]) -> None:
    """The owner (or a hop) refused the forwarded request: final, with its reason, shown to the applicant."""
    row = await store.request(uow.conn, request_id, lock=True)
    if row is None or row["state"] != "forwarding":
        return
    now = uow.clock.now()
    code, message = str(error.get("code", "refused")), str(error.get("message", ""))
    await store.update_request(uow.conn, request_id, now=now, state="forward_refused", decision_reason=message)
    await fed_store.set_request(
        uow.conn,
        request_id,
        forward_error=f"{code}: {message}",
        origin_status={"refusal": {k: error.get(k) for k in ("code", "message", "details", "trace_id")}},
    )
    await store.add_history(
        uow.conn, request_id, action="forward_refused", actor=f"peer:{peer}", department=None, at=now, note=message
    )
    uow.emit(
        events.FORWARD_REFUSED,
        request_id,
        events.ForwardRefused(
            **_event_fields(row, f"peer:{peer}", state="forward_refused"),
            origin_platform=row["origin_platform"],
            code=code,
            reason=message,
        ),
    )


async def attempt_failed(uow: UnitOfWork, request_id: str, *, error: str) -> None:
    await fed_store.forward_failed(uow.conn, request_id, error=error[:1000])


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else None


async def apply_report(uow: UnitOfWork, peer: str, report: dict[str, Any]) -> bool:
    """A report from the peer this request was forwarded to: its state, due date, decision and grant as the
    deciding platform has them. False when it is older than what is applied (nothing changes)."""
    row = await fed_store.forwarded_here(uow.conn, str(report.get("request_id", "")))
    if row is None or row["next_hop"] != peer:
        raise NotFound("本平台没有转送给贵平台的该共享申请。", "No request of ours went to your platform with this id.")
    version = datetime.fromisoformat(str(report["version"]))
    if row["origin_version"] is not None and version <= row["origin_version"]:
        return False
    first = row["origin_request_id"] is None
    now = uow.clock.now()
    state = str(report["state"])
    due = _day(report.get("due_date"))
    await store.update_request(
        uow.conn,
        row["id"],
        now=now,
        state=state,
        due_date=due,
        deadline_wd=report.get("deadline_wd"),
        escalation_level=int(report.get("escalation_level", -1)),
        provider_code=str(report["provider_code"]),
        resource_name=str(report["resource_name"]),
        share_type=str(report["share_type"]),
        profile=report.get("profile"),
        decision_reason=report.get("decision_reason"),
        decided_at=datetime.fromisoformat(report["decided_at"]) if report.get("decided_at") else None,
    )
    seen = len((row.get("origin_status") or {}).get("history", []))
    history = [h for h in report.get("history", []) if isinstance(h, dict)]
    for h in history[seen:]:
        await store.add_history(
            uow.conn,
            row["id"],
            action=str(h.get("action")),
            actor=str(h.get("actor")),
            department=h.get("actor_department"),
            at=datetime.fromisoformat(str(h["at"])),
            note=h.get("note"),
            due_date=_day(h.get("due_date")),
        )
    await fed_store.set_request(
        uow.conn,
        row["id"],
        origin_request_id=str(report["origin_request_id"]),
        origin_version=version,
        origin_status={k: v for k, v in report.items() if k != "request_id"},
        forward_error=None,
    )
    grant = report.get("grant") or {}
    actor = f"peer:{peer}"
    fields = _event_fields(row, actor, state=state, due_date=due, provider_code=str(report["provider_code"]))
    if first:
        uow.emit(
            events.FORWARD_DELIVERED,
            row["id"],
            events.ForwardDelivered(
                **fields, origin_platform=row["origin_platform"], origin_request_id=str(report["origin_request_id"])
            ),
        )
    uow.emit(
        events.ORIGIN_REPORTED,
        row["id"],
        events.OriginReported(
            **fields,
            origin_platform=row["origin_platform"],
            origin_request_id=str(report["origin_request_id"]),
            decision_reason=report.get("decision_reason"),
            grant_status=grant.get("status"),
        ),
    )
    return True


# --- the reports this platform owes -------------------------------------------------------------------------


def report(row: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """A request received from a peer, as that peer is told of it: the whole current state, versioned."""
    grant = None
    if row.get("grant_id"):
        grant = {
            "id": row["grant_id"],
            "status": row["grant_status"],
            "items": row["grant_items"],
            "unmasked_items": row["grant_unmasked_items"],
            "valid_until": row["grant_valid_until"],
            "end_reason": row["grant_end_reason"],
            "ended_at": row["grant_ended_at"],
        }
    relayed = row.get("origin_status") or {}
    return {
        "request_id": row["peer_request_id"],
        # A relay names the owner's request once the owner has reported it (its own relay record until then).
        "origin_request_id": relayed.get("origin_request_id") or row["id"],
        "origin_platform": row.get("origin_platform"),
        "state": row["state"],
        "due_date": row["due_date"],
        "deadline_wd": row["deadline_wd"],
        "escalation_level": row["escalation_level"],
        "provider_code": row["provider_code"],
        "resource_name": row["resource_name"],
        "share_type": row["share_type"],
        "profile": row["profile"],
        "decision_reason": row["decision_reason"],
        "decided_at": row["decided_at"],
        # A relay passes on the grant the owner reported to it.
        "grant": grant if grant is not None else relayed.get("grant"),
        "history": history,
        "version": row["version"],
        # A relay passes on the owner's refusal of the application, in the owner's error shape.
        "refusal": relayed.get("refusal"),
    }
