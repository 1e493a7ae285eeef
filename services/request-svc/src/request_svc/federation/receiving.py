"""A request forwarded here by a peer platform: when the resource is this platform's own, it enters the
ordinary workflow (`flows.submit`) — decided by the owning provider under its jurisdiction's profile and
working-day deadline, the applying department named by its unified social credit code and its platform's
division code; when the resource is mirrored here from another platform, it is forwarded on (a relay).

The forwarding call's Idempotency-Key makes a retry answer the request it made the first time. A refusal is the
workflow's own (in the error shape); nothing of a refused application stays.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from govshare_common.auth import Principal
from govshare_common.calendar_store import CalendarService
from govshare_common.db import UnitOfWork
from govshare_common.errors import ValidationFailed, field_error
from govshare_common.federation_codes import mirrored_code
from govshare_common.identifiers import InvalidIdentifier, validate_uscc
from govshare_common.peer_guard import PEER_KIND, VerifiedCall
from govshare_common.platform_identity import division_code_problem
from govshare_common.profiles import Profile

from request_svc import events, flows, store
from request_svc.domain import Application
from request_svc.federation import forwarding
from request_svc.federation import store as fed_store

log = logging.getLogger("govshare.request.federation")


def _bad_applicant(field: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed(
        "转送的共享申请未通过校验。",
        "The forwarded request did not validate.",
        details={"fields": [field_error(field, zh, en, code="invalid_applicant")]},
    )


def _applicant(body: dict[str, Any], peer: str) -> dict[str, Any]:
    applicant = dict(body.get("applicant") or {})
    # The platform the department belongs to: named by the first hop; a direct peer's own when it names none.
    applicant["platform"] = applicant.get("platform") or peer
    if division_code_problem(str(applicant["platform"])) is not None:
        raise _bad_applicant("applicant.platform", "申请部门所属平台的行政区划代码无效。", "Not a division code.")
    try:
        validate_uscc(str(applicant.get("department_code", "")))
    except InvalidIdentifier:
        raise _bad_applicant(
            "applicant.department_code",
            "申请部门须以统一社会信用代码标识。",
            "The applying department is named by its unified social credit code.",
        ) from None
    return applicant


async def shown_to_peer(uow: UnitOfWork, request_id: str) -> dict[str, Any]:
    rows = [r for r in await fed_store.to_report(uow.conn, request_id=request_id)]
    assert rows, request_id
    return forwarding.report(rows[0], await store.history(uow.conn, request_id))


async def receive(
    uow: UnitOfWork,
    call: VerifiedCall,
    body: dict[str, Any],
    *,
    me: str,
    calendar: CalendarService,
    profile: Profile,
) -> tuple[int, dict[str, Any]]:
    """(status, the request as the peer is told of it): 201 made now, 200 made by this call's first delivery."""
    peer = call.peer["division_code"]
    existing = await fed_store.from_peer(uow.conn, peer, call.idempotency_key)
    if existing is not None:
        return 200, await shown_to_peer(uow, existing)
    applicant = _applicant(body, peer)
    valid_until = body.get("valid_until")
    application = Application(
        consumer_code=str(applicant["department_code"]).strip().upper(),
        items=[str(i).strip() for i in body.get("items") or []],
        purposes=[str(p) for p in body.get("purposes") or []],
        purpose_other=body.get("purpose_other"),
        scope=str(body.get("scope") or ""),
        security_measures=str(body.get("security_measures") or ""),
        business_matter=str(body.get("business_matter") or ""),
        policy_basis=body.get("policy_basis"),
        valid_until_wanted=datetime.fromisoformat(valid_until) if isinstance(valid_until, str) else None,
        written_application=body.get("written_application"),
    )
    principal = Principal(
        subject=f"peer:{peer}:{body.get('submitted_by', '')}"[:200],
        kind=PEER_KIND,
        name=str(applicant.get("department_name") or ""),
    )
    origin = str(body.get("origin_platform") or me)
    code = str(body.get("resource_code") or "")
    from_peer = {
        "division_code": peer,
        "request_id": str(body.get("request_id")),
        "idempotency_key": call.idempotency_key,
    }
    if origin != me:
        mirrored = await forwarding.mirrored_resource(uow, mirrored_code(origin, code))
        if mirrored is not None:
            request_id = await forwarding.forward(
                uow, principal, mirrored, application, applicant=applicant, from_peer=from_peer
            )
            log.info(
                "relaying request %s of platform %s (%s here) towards %s",
                from_peer["request_id"],
                peer,
                request_id,
                origin,
            )
            return 201, await shown_to_peer(uow, request_id)
    # A savepoint: a refused application leaves nothing (the nonce of the call is kept, the rest rolls back).
    async with uow.conn.begin_nested():
        request_id = await flows.submit(
            uow,
            principal,
            resource_code=code,
            application=application,
            renews_grant_id=None,
            calendar=calendar,
            profile=profile,
        )
        await fed_store.set_request(
            uow.conn,
            request_id,
            consumer_platform=peer,
            consumer_name=applicant.get("department_name"),
            peer_request_id=from_peer["request_id"],
            peer_idempotency_key=call.idempotency_key,
            forward_body={**body, "applicant": applicant},
        )
    row = await store.request(uow.conn, request_id)
    assert row is not None
    uow.emit(
        events.RECEIVED,
        request_id,
        events.RequestReceived(
            **flows.event_fields(row, principal.subject),
            applicant_platform=str(applicant["platform"]),
            from_peer=peer,
            peer_request_id=from_peer["request_id"],
        ),
    )
    return 201, await shown_to_peer(uow, request_id)
