"""request-svc's tables and queries: the catalog projection, requests and their history, grants, terms, transfers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from govshare_common.record_ids import is_uuid

from request_svc.domain import ResourceView


def _row(r: Any) -> dict[str, Any] | None:
    return dict(r._mapping) if r is not None else None


# --- catalog projection ------------------------------------------------------------------------------------


async def resource(conn: Any, code: str) -> ResourceView | None:
    r = (
        await conn.execute(
            text(
                "SELECT code, resource_id, name, provider_code, share_type, status, "
                "ARRAY(SELECT jsonb_array_elements(data_items)->>'name') AS item_names "
                "FROM resource_projection WHERE code = :code"
            ),
            {"code": code},
        )
    ).one_or_none()
    if r is None:
        return None
    return ResourceView(
        code=r.code,
        resource_id=r.resource_id,
        name=r.name,
        provider_code=r.provider_code,
        share_type=r.share_type,
        status=r.status,
        item_names=tuple(r.item_names),
    )


# --- requests ----------------------------------------------------------------------------------------------

REQUEST_COLUMNS = (
    "id::text AS id, consumer_code, provider_code, resource_code, resource_id, resource_name, share_type, items, "
    "purposes, purpose_other, scope, security_measures, business_matter, policy_basis, valid_until_wanted, "
    "renews_grant_id::text AS renews_grant_id, state, escalation_level, submitted_by, submitted_at, submitted_on, "
    "deadline_wd, due_date, overdue_since, overdue_count, info_requested_on, decided_by, decided_at, "
    "decision_reason, grant_id::text AS grant_id, updated_at, profile, origin_platform, origin_request_id, "
    "origin_status, forward_error, consumer_platform, consumer_name"
)


async def insert_request(conn: Any, row: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "INSERT INTO share_request (id, consumer_code, provider_code, resource_code, resource_id, resource_name, "
            "share_type, items, purposes, purpose_other, scope, security_measures, business_matter, policy_basis, "
            "valid_until_wanted, renews_grant_id, state, escalation_level, submitted_by, submitted_at, submitted_on, "
            "deadline_wd, due_date, profile, updated_at) VALUES (CAST(:id AS uuid), :consumer_code, :provider_code, "
            ":resource_code, :resource_id, :resource_name, :share_type, :items, :purposes, :purpose_other, :scope, "
            ":security_measures, :business_matter, :policy_basis, :valid_until_wanted, CAST(:renews_grant_id AS uuid), "
            ":state, :escalation_level, :submitted_by, :submitted_at, :submitted_on, :deadline_wd, :due_date, "
            ":profile, :submitted_at)"
        ),
        row,
    )


async def request(conn: Any, request_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    if not is_uuid(request_id):
        return None
    r = (
        await conn.execute(
            text(
                f"SELECT {REQUEST_COLUMNS} FROM share_request WHERE id = CAST(:id AS uuid)"
                f"{' FOR UPDATE' if lock else ''}"
            ),
            {"id": request_id},
        )
    ).one_or_none()
    return _row(r)


async def update_request(conn: Any, request_id: str, *, now: datetime, **fields: Any) -> None:
    assignments = ", ".join(f"{k} = :{k}" for k in fields)
    await conn.execute(
        text(f"UPDATE share_request SET {assignments}, updated_at = :now WHERE id = CAST(:id AS uuid)"),
        {**fields, "id": request_id, "now": now},
    )


async def add_history(
    conn: Any,
    request_id: str,
    *,
    action: str,
    actor: str,
    department: str | None,
    at: datetime,
    note: str | None = None,
    due_date: date | None = None,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO request_history (request_id, action, actor, actor_department, at, note, due_date) "
            "VALUES (CAST(:id AS uuid), :action, :actor, :dept, :at, :note, :due)"
        ),
        {
            "id": request_id,
            "action": action,
            "actor": actor,
            "dept": department,
            "at": at,
            "note": note,
            "due": due_date,
        },
    )


async def history(conn: Any, request_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT action, actor, actor_department, at, note, due_date FROM request_history "
            "WHERE request_id = CAST(:id AS uuid) ORDER BY id"
        ),
        {"id": request_id},
    )
    return [dict(r._mapping) for r in rows]


async def requests(
    conn: Any,
    *,
    department: str | None,
    role: str | None,
    states: list[str] | None,
    resource_code: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if department is not None:
        params["d"] = department
        if role == "consumer":
            clauses.append("consumer_code = :d")
        elif role == "provider":
            clauses.append("provider_code = :d")
        else:
            clauses.append("(consumer_code = :d OR provider_code = :d)")
    if states:
        clauses.append("state = ANY(:states)")
        params["states"] = states
    if resource_code:
        clauses.append("resource_code = :rc")
        params["rc"] = resource_code
    where = " AND ".join(clauses) or "true"
    rows = await conn.execute(
        text(
            f"SELECT {REQUEST_COLUMNS} FROM share_request WHERE {where} "
            "ORDER BY submitted_at DESC, id LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    total = (await conn.execute(text(f"SELECT count(*) FROM share_request WHERE {where}"), params)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def worklist_page(conn: Any, where: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    rows = await conn.execute(
        text(
            f"SELECT {REQUEST_COLUMNS}, (due_date IS NOT NULL AND due_date <= :soon) AS due_soon "
            f"FROM share_request WHERE {where} "
            "ORDER BY (due_date IS NOT NULL AND due_date <= :soon) DESC, due_date NULLS LAST, submitted_at, id "
            "LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    total = (await conn.execute(text(f"SELECT count(*) FROM share_request WHERE {where}"), params)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def open_with_deadline(conn: Any) -> list[dict[str, Any]]:
    """Requests someone owes an answer by a date: what the deadline job looks at."""
    rows = await conn.execute(
        text(
            f"SELECT {REQUEST_COLUMNS}, due_soon_sent FROM share_request "
            "WHERE state IN ('submitted', 'escalated') AND due_date IS NOT NULL AND overdue_since IS NULL "
            # A request decided on another platform is watched there, under that platform's calendar and rules.
            "AND origin_platform IS NULL ORDER BY due_date FOR UPDATE SKIP LOCKED"
        )
    )
    return [dict(r._mapping) for r in rows]


async def overdue_by_provider(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT provider_code, sum(overdue_count)::int AS overdue_requests, "
            "count(*) FILTER (WHERE overdue_since IS NOT NULL AND state IN ('submitted', 'escalated'))::int "
            "AS still_unanswered FROM share_request WHERE overdue_count > 0 GROUP BY provider_code "
            "ORDER BY overdue_requests DESC, provider_code"
        )
    )
    return [dict(r._mapping) for r in rows]


# --- provider terms (Hainan: the provider states its reply deadline) -----------------------------------------


async def provider_terms(conn: Any, department: str) -> int | None:
    value = (
        await conn.execute(
            text("SELECT reply_deadline_wd FROM provider_terms WHERE department_code = :d"), {"d": department}
        )
    ).scalar_one_or_none()
    return int(value) if value is not None else None


async def set_provider_terms(conn: Any, department: str, days: int, *, actor: str, now: datetime) -> None:
    await conn.execute(
        text(
            "INSERT INTO provider_terms (department_code, reply_deadline_wd, updated_by, updated_at) "
            "VALUES (:d, :n, :a, :now) ON CONFLICT (department_code) DO UPDATE SET "
            "reply_deadline_wd = excluded.reply_deadline_wd, updated_by = excluded.updated_by, "
            "updated_at = excluded.updated_at"
        ),
        {"d": department, "n": days, "a": actor, "now": now},
    )


# --- grants ------------------------------------------------------------------------------------------------

GRANT_COLUMNS = (
    "id::text AS id, request_id::text AS request_id, consumer_code, provider_code, resource_id, resource_code, "
    "items, unmasked_items, purposes, scope, conditions, valid_from, valid_until, status, issued_by, issued_at, "
    "ended_at, ended_by, ended_by_department, end_reason"
)


async def insert_grant(conn: Any, row: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "INSERT INTO share_grant (id, request_id, consumer_code, provider_code, resource_id, resource_code, "
            "items, unmasked_items, purposes, scope, conditions, valid_from, valid_until, status, issued_by, "
            "issued_at) VALUES (CAST(:id AS uuid), CAST(:request_id AS uuid), :consumer_code, :provider_code, "
            ":resource_id, :resource_code, :items, :unmasked_items, :purposes, :scope, :conditions, :valid_from, "
            ":valid_until, 'active', :issued_by, :issued_at)"
        ),
        row,
    )


async def grant(conn: Any, grant_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    if not is_uuid(grant_id):
        return None
    r = (
        await conn.execute(
            text(
                f"SELECT {GRANT_COLUMNS} FROM share_grant WHERE id = CAST(:id AS uuid){' FOR UPDATE' if lock else ''}"
            ),
            {"id": grant_id},
        )
    ).one_or_none()
    return _row(r)


async def grants(
    conn: Any,
    *,
    department: str | None,
    role: str | None,
    statuses: list[str] | None,
    resource_code: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if department is not None:
        params["d"] = department
        clauses.append(
            {"consumer": "consumer_code = :d", "provider": "provider_code = :d"}.get(
                role or "", "(consumer_code = :d OR provider_code = :d)"
            )
        )
    if statuses:
        clauses.append("status = ANY(:statuses)")
        params["statuses"] = statuses
    if resource_code:
        clauses.append("resource_code = :rc")
        params["rc"] = resource_code
    where = " AND ".join(clauses) or "true"
    rows = await conn.execute(
        text(
            f"SELECT {GRANT_COLUMNS} FROM share_grant WHERE {where} ORDER BY issued_at DESC, id LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    total = (await conn.execute(text(f"SELECT count(*) FROM share_grant WHERE {where}"), params)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def end_grant(
    conn: Any,
    grant_id: str,
    *,
    status: str,
    at: datetime,
    by: str | None = None,
    department: str | None = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        text(
            "UPDATE share_grant SET status = :s, ended_at = :at, ended_by = :by, ended_by_department = :dept, "
            "end_reason = :reason WHERE id = CAST(:id AS uuid)"
        ),
        {"s": status, "at": at, "by": by, "dept": department, "reason": reason, "id": grant_id},
    )


async def expiring_grants(conn: Any, *, now: datetime) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            f"SELECT {GRANT_COLUMNS} FROM share_grant WHERE status = 'active' AND valid_until IS NOT NULL "
            "AND valid_until <= :now ORDER BY valid_until FOR UPDATE SKIP LOCKED"
        ),
        {"now": now},
    )
    return [dict(r._mapping) for r in rows]


# --- transfers ---------------------------------------------------------------------------------------------

TRANSFER_COLUMNS = (
    "id::text AS id, grant_id::text AS grant_id, consumer_code, provider_code, resource_code, third_party, purpose, "
    "state, office_decision, office_by, office_at, provider_decision, provider_by, provider_at, refusal_reason, "
    "requested_by, requested_at"
)


async def insert_transfer(conn: Any, row: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "INSERT INTO transfer (id, grant_id, consumer_code, provider_code, resource_code, third_party, purpose, "
            "state, requested_by, requested_at) VALUES (CAST(:id AS uuid), CAST(:grant_id AS uuid), :consumer_code, "
            ":provider_code, :resource_code, :third_party, :purpose, 'pending', :requested_by, :requested_at)"
        ),
        row,
    )


async def transfer(conn: Any, transfer_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    if not is_uuid(transfer_id):
        return None
    r = (
        await conn.execute(
            text(
                f"SELECT {TRANSFER_COLUMNS} FROM transfer WHERE id = CAST(:id AS uuid){' FOR UPDATE' if lock else ''}"
            ),
            {"id": transfer_id},
        )
    ).one_or_none()
    return _row(r)


async def transfers_of(conn: Any, grant_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(f"SELECT {TRANSFER_COLUMNS} FROM transfer WHERE grant_id = CAST(:g AS uuid) ORDER BY requested_at"),
        {"g": grant_id},
    )
    return [dict(r._mapping) for r in rows]


async def record_transfer_decision(
    conn: Any, transfer_id: str, *, party: str, decision: str, by: str, at: datetime, state: str, reason: str | None
) -> None:
    column = "office" if party == "platform_office" else "provider"
    await conn.execute(
        text(
            f"UPDATE transfer SET {column}_decision = :decision, {column}_by = :by, {column}_at = :at, state = :state, "
            "refusal_reason = COALESCE(:reason, refusal_reason) WHERE id = CAST(:id AS uuid)"
        ),
        {"decision": decision, "by": by, "at": at, "state": state, "reason": reason, "id": transfer_id},
    )
