"""The share-request workflow: each step loads what the rules need, applies them, stores the change and emits
its event in the same unit of work. Also the two periodic jobs (deadlines, grant expiry)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from govshare_common.auth import Principal
from govshare_common.calendar_store import CalendarService
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import Conflict, Forbidden, NotFound
from govshare_common.profiles import Profile
from govshare_common.sharing import PLATFORM_OFFICE

from request_svc import domain, events, jurisdictions, restrictions, store
from request_svc.domain import Application, GrantTerms


@dataclass(frozen=True)
class ApprovalInput:
    items: list[str] | None
    unmasked_items: list[str]
    conditions: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    comment: str | None


def _actor_department(principal: Principal) -> str | None:
    return principal.department


async def _load(uow: UnitOfWork, request_id: str) -> dict[str, Any]:
    row = await store.request(uow.conn, request_id, lock=True)
    if row is None:
        raise NotFound("共享申请不存在。", "No such share request.", code="not_found")
    if row["origin_platform"] is not None:
        # Decided on the owner's platform; what is shown here is that platform's report (issue 16 item 4).
        raise Conflict(
            f"该申请为跨平台申请，由信息资源所属平台 {row['origin_platform']} 办理，本平台不能对其作出处理。",
            f"A cross-level request is handled on the owner's platform {row['origin_platform']}, not here.",
            code="cross_level_request",
            details={"origin_platform": row["origin_platform"]},
        )
    return row


def event_fields(row: dict[str, Any], actor: str, **changes: Any) -> dict[str, Any]:
    """What every request event carries, from the request's row with `changes` applied."""
    merged = {**row, **changes}
    return {
        "request_id": merged["id"],
        "consumer_code": merged["consumer_code"],
        "provider_code": merged["provider_code"],
        "resource_code": merged["resource_code"],
        "state": merged["state"],
        "due_date": merged["due_date"],
        "actor": actor,
    }


async def _deadline(
    uow: UnitOfWork, calendar: CalendarService, start: date, days: int | None, purpose: str
) -> date | None:
    if days is None:
        return None
    return (await calendar.add_working_days(uow, start, days, purpose=purpose)).due


async def _reply_days(uow: UnitOfWork, profile: Profile, provider: str, level: int) -> int | None:
    """Working days the one who must answer has: the provider's reply deadline (Hainan: its stated terms), or
    the escalation step's own limit (None where the seed sets none)."""
    if level < 0:
        terms = await store.provider_terms(uow.conn, provider) if profile.provider_sets_deadline else None
        return profile.reply_deadline(terms)
    s = domain.step(profile, level)
    return s.deadline_wd if s is not None else None


# --- submission --------------------------------------------------------------------------------------------


async def submit(
    uow: UnitOfWork,
    principal: Principal,
    *,
    resource_code: str,
    application: Application,
    renews_grant_id: str | None,
    calendar: CalendarService,
    profile: Profile,
) -> str:
    now = uow.clock.now()
    await restrictions.ensure_may_apply(uow, application.consumer_code)
    resource = await store.resource(uow.conn, resource_code)
    if resource is not None:
        # Handled under the provider's jurisdiction's rules (a hosted jurisdiction has its own), to its end.
        profile = await jurisdictions.department_profile(uow, profile, resource.provider_code)
    domain.check_application(resource, application, profile, now)
    assert resource is not None
    if renews_grant_id is not None:
        old = await store.grant(uow.conn, renews_grant_id)
        if old is None or old["consumer_code"] != application.consumer_code or old["resource_code"] != resource.code:
            raise NotFound(
                "要续期的授权不存在，或不是本部门对该信息资源的授权。",
                "The grant to renew does not exist or is not your department's grant for this resource.",
                code="renewed_grant_not_found",
            )
    level = domain.first_step(resource)
    today = china_date(uow.clock)
    days = await _reply_days(uow, profile, resource.provider_code, level)
    request_id = str(uuid.uuid4())
    due = await _deadline(uow, calendar, today, days, f"share request {request_id}")
    state = "submitted" if level < 0 else "escalated"
    await store.insert_request(
        uow.conn,
        {
            "id": request_id,
            "consumer_code": application.consumer_code,
            "provider_code": resource.provider_code,
            "resource_code": resource.code,
            "resource_id": resource.resource_id,
            "resource_name": resource.name,
            "share_type": resource.share_type,
            "items": list(application.items),
            "purposes": list(dict.fromkeys(application.purposes)),
            "purpose_other": (application.purpose_other or "").strip() or None,
            "scope": application.scope.strip(),
            "security_measures": application.security_measures.strip(),
            "business_matter": application.business_matter.strip(),
            "policy_basis": (application.policy_basis or "").strip() or None,
            "valid_until_wanted": application.valid_until_wanted,
            "renews_grant_id": renews_grant_id,
            "state": state,
            "escalation_level": level,
            "submitted_by": principal.subject,
            "submitted_at": now,
            "submitted_on": today,
            "deadline_wd": days,
            "due_date": due,
            "profile": profile.name,
        },
    )
    note = None
    if level >= 0:
        s = domain.step(profile, level)
        note = f"不予共享的信息资源，直接进入：{s.label if s else ''}"
        letter = domain.written_application(s, application.written_application)
        if letter:
            note += f"。书面申请：{letter}"
    await store.add_history(
        uow.conn,
        request_id,
        action="submitted",
        actor=principal.subject,
        department=principal.department,
        at=now,
        note=note,
        due_date=due,
    )
    row = await store.request(uow.conn, request_id)
    assert row is not None
    uow.emit(
        events.SUBMITTED,
        request_id,
        events.RequestSubmitted(
            **event_fields(row, principal.subject),
            share_type=resource.share_type,
            items=list(row["items"]),
            purposes=list(row["purposes"]),
            escalation_level=level,
            profile=profile.name,
        ),
    )
    return request_id


# --- the provider's review ---------------------------------------------------------------------------------


def _ensure_decider(row: dict[str, Any], principal: Principal, profile: Profile) -> domain.Decider:
    return domain.ensure_decider(
        jurisdictions.request_profile(row, profile),
        state=row["state"],
        level=row["escalation_level"],
        consumer_code=row["consumer_code"],
        provider_code=row["provider_code"],
        department=principal.department,
        roles=principal.roles,
    )


async def request_info(
    uow: UnitOfWork, principal: Principal, request_id: str, *, question: str, profile: Profile
) -> None:
    row = await _load(uow, request_id)
    _ensure_decider(row, principal, profile)
    if row["state"] != "submitted":
        raise Conflict(
            "只有提供部门审核中的申请可以要求补充材料。",
            "More information can be asked only during the provider's review.",
            code="not_in_review",
        )
    now, today = uow.clock.now(), china_date(uow.clock)
    await store.update_request(uow.conn, request_id, now=now, state="info_requested", info_requested_on=today)
    await store.add_history(
        uow.conn,
        request_id,
        action="info_requested",
        actor=principal.subject,
        department=principal.department,
        at=now,
        note=question,
        due_date=row["due_date"],
    )
    uow.emit(
        events.INFO_REQUESTED,
        request_id,
        events.InfoRequested(**event_fields(row, principal.subject, state="info_requested"), question=question),
    )


async def provide_info(
    uow: UnitOfWork, principal: Principal, request_id: str, *, answer: str, calendar: CalendarService
) -> None:
    """The consumer answers; the deadline moves by the working days the consumer took (the clock stood still)."""
    row = await _load(uow, request_id)
    if principal.department != row["consumer_code"]:
        raise Forbidden("只有提出申请的部门可以补充材料。", "Only the consumer answers.", code="not_consumer")
    if row["state"] != "info_requested":
        raise Conflict("提供部门没有要求补充材料。", "No information was asked for.", code="no_info_requested")
    now, today = uow.clock.now(), china_date(uow.clock)
    paused = (
        await calendar.working_days_between(uow, row["info_requested_on"], today, purpose=f"pause of {request_id}")
    ).days
    due = row["due_date"]
    if due is not None and paused:
        due = await _deadline(uow, calendar, due, paused, f"share request {request_id} after more information")
    await store.update_request(
        uow.conn,
        request_id,
        now=now,
        state="submitted",
        due_date=due,
        info_requested_on=None,
        due_soon_sent=False,
        overdue_since=None,
    )
    await store.add_history(
        uow.conn,
        request_id,
        action="info_provided",
        actor=principal.subject,
        department=principal.department,
        at=now,
        note=answer,
        due_date=due,
    )
    uow.emit(
        events.INFO_PROVIDED,
        request_id,
        events.InfoProvided(
            **event_fields(row, principal.subject, state="submitted", due_date=due),
            previous_due_date=row["due_date"],
            paused_working_days=paused,
        ),
    )


async def _issue_grant(uow: UnitOfWork, principal: Principal, row: dict[str, Any], terms: GrantTerms) -> str:
    grant_id = str(uuid.uuid4())
    data = {
        "id": grant_id,
        "request_id": row["id"],
        "consumer_code": row["consumer_code"],
        "provider_code": row["provider_code"],
        "resource_id": row["resource_id"],
        "resource_code": row["resource_code"],
        "items": list(terms.items),
        "unmasked_items": list(terms.unmasked_items),
        "purposes": list(row["purposes"]),
        "scope": row["scope"],
        "conditions": list(terms.conditions),
        "valid_from": terms.valid_from,
        "valid_until": terms.valid_until,
        "issued_by": principal.subject,
        "issued_at": uow.clock.now(),
    }
    await store.insert_grant(uow.conn, data)
    uow.emit(
        events.GRANT_ISSUED,
        grant_id,
        events.GrantIssued(
            grant_id=grant_id,
            request_id=row["id"],
            consumer_code=row["consumer_code"],
            provider_code=row["provider_code"],
            resource_id=row["resource_id"],
            resource_code=row["resource_code"],
            items=data["items"],
            unmasked_items=data["unmasked_items"],
            purposes=data["purposes"],
            scope=data["scope"],
            conditions=data["conditions"],
            valid_from=terms.valid_from,
            valid_until=terms.valid_until,
            consumer_platform=row.get("consumer_platform"),
        ),
    )
    return grant_id


async def approve(
    uow: UnitOfWork, principal: Principal, request_id: str, body: ApprovalInput, *, profile: Profile
) -> None:
    row = await _load(uow, request_id)
    who = _ensure_decider(row, principal, profile)
    now = uow.clock.now()
    terms = domain.grant_terms(
        row["items"],
        items=body.items,
        unmasked_items=body.unmasked_items,
        conditions=body.conditions,
        valid_from=body.valid_from,
        valid_until=body.valid_until if body.valid_until is not None else row["valid_until_wanted"],
        now=now,
    )
    grant_id = await _issue_grant(uow, principal, row, terms)
    await store.update_request(
        uow.conn,
        request_id,
        now=now,
        state="approved",
        decided_by=principal.subject,
        decided_at=now,
        decision_reason=body.comment,
        grant_id=uuid.UUID(grant_id),
    )
    escalated = row["state"] == "escalated"
    await store.add_history(
        uow.conn,
        request_id,
        action="decided_approve" if escalated else "approved",
        actor=principal.subject,
        department=principal.department,
        at=now,
        note=body.comment,
    )
    common = event_fields(row, principal.subject, state="approved")
    if escalated:
        s = domain.step(jurisdictions.request_profile(row, profile), row["escalation_level"])
        uow.emit(
            events.DECIDED,
            request_id,
            events.RequestDecided(
                **common,
                level=row["escalation_level"],
                step=s.name if s else "",
                outcome="approve",
                reason=body.comment or "",
                grant_id=grant_id,
                binding=who == "platform_office",
            ),
        )
    else:
        uow.emit(
            events.APPROVED, request_id, events.RequestApproved(**common, grant_id=grant_id, items=list(terms.items))
        )


async def reject(uow: UnitOfWork, principal: Principal, request_id: str, *, reason: str, profile: Profile) -> None:
    row = await _load(uow, request_id)
    who = _ensure_decider(row, principal, profile)
    now = uow.clock.now()
    await store.update_request(
        uow.conn,
        request_id,
        now=now,
        state="rejected",
        decided_by=principal.subject,
        decided_at=now,
        decision_reason=reason,
    )
    escalated = row["state"] == "escalated"
    await store.add_history(
        uow.conn,
        request_id,
        action="decided_reject" if escalated else "rejected",
        actor=principal.subject,
        department=principal.department,
        at=now,
        note=reason,
    )
    common = event_fields(row, principal.subject, state="rejected")
    if escalated:
        s = domain.step(jurisdictions.request_profile(row, profile), row["escalation_level"])
        uow.emit(
            events.DECIDED,
            request_id,
            events.RequestDecided(
                **common,
                level=row["escalation_level"],
                step=s.name if s else "",
                outcome="reject",
                reason=reason,
                grant_id=None,
                binding=who == "platform_office",
            ),
        )
    else:
        uow.emit(events.REJECTED, request_id, events.RequestRejected(**common, reason=reason))


async def escalate(
    uow: UnitOfWork,
    principal: Principal,
    request_id: str,
    *,
    reason: str,
    written_application: str | None,
    calendar: CalendarService,
    profile: Profile,
) -> None:
    """The consumer takes a refusal to the next step the profile names (negotiation, coordinator, leading group)."""
    row = await _load(uow, request_id)
    if principal.department != row["consumer_code"]:
        raise Forbidden("只有提出申请的部门可以申请协调。", "Only the consumer escalates.", code="not_consumer")
    profile = jurisdictions.request_profile(row, profile)
    level = domain.next_level(profile, row["state"], row["escalation_level"])
    s = domain.step(profile, level)
    assert s is not None
    letter = domain.written_application(s, written_application)
    now, today = uow.clock.now(), china_date(uow.clock)
    due = await _deadline(uow, calendar, today, s.deadline_wd, f"escalation of {request_id}")
    await store.update_request(
        uow.conn,
        request_id,
        now=now,
        state="escalated",
        escalation_level=level,
        due_date=due,
        deadline_wd=s.deadline_wd,
        due_soon_sent=False,
        overdue_since=None,
        decided_by=None,
        decided_at=None,
    )
    await store.add_history(
        uow.conn,
        request_id,
        action="escalated",
        actor=principal.subject,
        department=principal.department,
        at=now,
        note=f"{s.label}：{reason}" + (f"。书面申请：{letter}" if letter else ""),
        due_date=due,
    )
    uow.emit(
        events.ESCALATED,
        request_id,
        events.RequestEscalated(
            **event_fields(row, principal.subject, state="escalated", due_date=due),
            level=level,
            step=s.name,
            step_label=s.label,
            reason=reason,
            written_application=letter is not None,
        ),
    )


async def withdraw(uow: UnitOfWork, principal: Principal, request_id: str) -> None:
    row = await _load(uow, request_id)
    if principal.department != row["consumer_code"]:
        raise Forbidden("只有提出申请的部门可以撤回申请。", "Only the consumer withdraws.", code="not_consumer")
    if row["state"] not in ("submitted", "info_requested", "escalated"):
        raise Conflict("已办结的申请不能撤回。", "A settled request cannot be withdrawn.", code="settled")
    now = uow.clock.now()
    await store.update_request(uow.conn, request_id, now=now, state="withdrawn")
    await store.add_history(
        uow.conn, request_id, action="withdrawn", actor=principal.subject, department=principal.department, at=now
    )
    uow.emit(
        events.WITHDRAWN, request_id, events.RequestWithdrawn(**event_fields(row, principal.subject, state="withdrawn"))
    )


# --- the deadline job --------------------------------------------------------------------------------------


async def check_deadlines(uow: UnitOfWork, *, calendar: CalendarService, profile: Profile) -> None:
    """Announce once, one working day before, that an answer is due; mark overdue, once, a request unanswered
    when a working day has passed after its due date (it counts against whoever owed the answer)."""
    today = china_date(uow.clock)
    now = uow.clock.now()
    for row in await store.open_with_deadline(uow.conn):
        due: date = row["due_date"]
        late = (await calendar.working_days_between(uow, due, today, purpose="overdue share requests")).days
        if late >= 1:
            rules = jurisdictions.request_profile(row, profile)
            awaiting = domain.decider(rules, row["state"], row["escalation_level"]) or "provider"
            # Only the provider's silence counts against it (无故不受理共享申请); a late coordinator is the
            # platform office's own lapse, still announced by the event.
            counted = row["overdue_count"] + (1 if awaiting == "provider" else 0)
            await store.update_request(uow.conn, row["id"], now=now, overdue_since=today, overdue_count=counted)
            await store.add_history(
                uow.conn,
                row["id"],
                action="overdue",
                actor=domain.SYSTEM_ACTOR,
                department=None,
                at=now,
                note=f"逾期 {late} 个工作日未答复",
                due_date=due,
            )
            uow.emit(
                events.OVERDUE,
                row["id"],
                events.RequestOverdue(**event_fields(row, domain.SYSTEM_ACTOR), days_late=late, awaiting=awaiting),
            )
            continue
        if row["due_soon_sent"] or today > due:
            continue
        left = (await calendar.working_days_between(uow, today, due, purpose="share requests due soon")).days
        if left <= 1:
            await store.update_request(uow.conn, row["id"], now=now, due_soon_sent=True)
            uow.emit(events.DUE_SOON, row["id"], events.RequestEvent(**event_fields(row, domain.SYSTEM_ACTOR)))


# --- grants ------------------------------------------------------------------------------------------------


async def expire_grants(uow: UnitOfWork) -> None:
    now = uow.clock.now()
    for g in await store.expiring_grants(uow.conn, now=now):
        await store.end_grant(uow.conn, g["id"], status="expired", at=g["valid_until"])
        uow.emit(
            events.GRANT_EXPIRED,
            g["id"],
            events.GrantExpired(
                grant_id=g["id"],
                consumer_code=g["consumer_code"],
                resource_code=g["resource_code"],
                expired_at=g["valid_until"],
            ),
        )


def may_end_grant(principal: Principal, grant: dict[str, Any]) -> bool:
    if principal.has("platform_admin"):
        return True
    return principal.department == grant["provider_code"] and principal.has("dept_admin", "dept_reviewer")


async def revoke_grant(uow: UnitOfWork, principal: Principal, grant_id: str, *, reason: str) -> None:
    g = await store.grant(uow.conn, grant_id, lock=True)
    if g is None:
        raise NotFound("授权不存在。", "No such grant.")
    if not may_end_grant(principal, g):
        raise Forbidden(
            "只有提供部门或平台管理机构可以撤销授权。",
            "Only the provider or the platform office revokes a grant.",
            code="not_revoker",
        )
    if g["status"] != "active":
        raise Conflict(
            f"该授权已{domain.GRANT_STATES[g['status']]}。", f"The grant is already {g['status']}.", code="grant_ended"
        )
    now = uow.clock.now()
    revoked_by = principal.department or PLATFORM_OFFICE
    await store.end_grant(
        uow.conn, grant_id, status="revoked", at=now, by=principal.subject, department=revoked_by, reason=reason
    )
    uow.emit(
        events.GRANT_REVOKED,
        grant_id,
        events.GrantRevoked(
            grant_id=grant_id,
            consumer_code=g["consumer_code"],
            resource_code=g["resource_code"],
            reason=reason,
            revoked_by=revoked_by,
            actor=principal.subject,
        ),
    )


# --- third-party transfers (Hainan Art.23) ----------------------------------------------------------------


async def request_transfer(
    uow: UnitOfWork, principal: Principal, grant_id: str, *, third_party: str, purpose: str, profile: Profile
) -> str:
    domain.ensure_transfer_allowed(profile)
    g = await store.grant(uow.conn, grant_id, lock=True)
    if g is None:
        raise NotFound("授权不存在。", "No such grant.")
    if principal.department != g["consumer_code"]:
        raise Forbidden("只有被授权部门可以申请向第三方提供。", "Only the grant's consumer asks.", code="not_consumer")
    if g["status"] != "active":
        raise Conflict("该授权已失效，不能申请转移。", "The grant is no longer active.", code="grant_ended")
    transfer_id = str(uuid.uuid4())
    await store.insert_transfer(
        uow.conn,
        {
            "id": transfer_id,
            "grant_id": grant_id,
            "consumer_code": g["consumer_code"],
            "provider_code": g["provider_code"],
            "resource_code": g["resource_code"],
            "third_party": third_party,
            "purpose": purpose,
            "requested_by": principal.subject,
            "requested_at": uow.clock.now(),
        },
    )
    uow.emit(
        events.TRANSFER_REQUESTED,
        transfer_id,
        events.TransferEvent(
            transfer_id=transfer_id,
            grant_id=grant_id,
            consumer_code=g["consumer_code"],
            provider_code=g["provider_code"],
            third_party=third_party,
            state="pending",
            actor=principal.subject,
        ),
    )
    return transfer_id


async def decide_transfer(
    uow: UnitOfWork, principal: Principal, transfer_id: str, *, approve: bool, reason: str | None, profile: Profile
) -> dict[str, Any]:
    domain.ensure_transfer_allowed(profile)
    t = await store.transfer(uow.conn, transfer_id, lock=True)
    if t is None:
        raise NotFound("转移申请不存在。", "No such transfer request.")
    if principal.has("platform_admin"):
        party = "platform_office"
    elif principal.department == t["provider_code"] and principal.has("dept_admin", "dept_reviewer"):
        party = "provider"
    else:
        raise Forbidden(
            "第三方转移由平台管理机构和提供部门审批。",
            "The platform office and the provider decide transfers.",
            code="not_transfer_approver",
        )
    if t["state"] != "pending" or t["office_decision" if party == "platform_office" else "provider_decision"]:
        raise Conflict("该转移申请已作出决定。", "This transfer is already decided.", code="already_decided")
    if not approve:
        reason = domain.required_reason(reason)
    decision = "approve" if approve else "refuse"
    office = decision if party == "platform_office" else t["office_decision"]
    provider = decision if party == "provider" else t["provider_decision"]
    state = domain.transfer_state(office, provider)
    await store.record_transfer_decision(
        uow.conn,
        transfer_id,
        party=party,
        decision=decision,
        by=principal.subject,
        at=uow.clock.now(),
        state=state,
        reason=reason,
    )
    base = {
        "transfer_id": transfer_id,
        "grant_id": t["grant_id"],
        "consumer_code": t["consumer_code"],
        "provider_code": t["provider_code"],
        "third_party": t["third_party"],
        "state": state,
        "actor": principal.subject,
    }
    if not approve:
        uow.emit(events.TRANSFER_REFUSED, transfer_id, events.TransferRefused(**base, party=party, reason=reason or ""))
    else:
        uow.emit(events.TRANSFER_CONSENTED, transfer_id, events.TransferConsented(**base, party=party))
        if state == "approved":
            uow.emit(events.TRANSFER_APPROVED, transfer_id, events.TransferEvent(**base))
    result = await store.transfer(uow.conn, transfer_id)
    assert result is not None
    return result
