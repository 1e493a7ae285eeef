"""Tables and queries of the catalog schema (search_path is the service's schema, so names are bare).

Owns: resources and every version of them, the action history, code sequences, the live catalog table the
views and search read (published_resource), update obligations and IT projects.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from govshare_common.record_ids import is_uuid

from catalog_svc import search
from catalog_svc.domain import BaseResourceItems, ResourceState

# --- resources and versions ---------------------------------------------------------------------------------

_STATE_COLUMNS = (
    "id::text AS id, provider_code, status, code, published_version, pending_version, pending_status, latest_version, "
    "origin_division"
)


async def resource_state(conn: Any, resource_id: str, *, lock: bool = False) -> ResourceState | None:
    if not is_uuid(resource_id):
        return None
    row = (
        await conn.execute(
            text(f"SELECT {_STATE_COLUMNS} FROM resource WHERE id = CAST(:id AS uuid){' FOR UPDATE' if lock else ''}"),
            {"id": resource_id},
        )
    ).one_or_none()
    return ResourceState(**row._mapping) if row is not None else None


async def resource_states(conn: Any, ids: list[str]) -> dict[str, ResourceState]:
    rows = await conn.execute(
        text(f"SELECT {_STATE_COLUMNS} FROM resource WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}
    )
    return {r.id: ResourceState(**r._mapping) for r in rows}


_INSERT_RESOURCE = text(
    "INSERT INTO resource (id, provider_code, provider_name, name, status, pending_version, pending_status, "
    "latest_version, created_by, created_at, updated_at) VALUES (CAST(:id AS uuid), :provider_code, "
    ":provider_name, :name, 'draft', 1, 'draft', 1, :actor, :now, :now)"
)
_INSERT_VERSION = text(
    "INSERT INTO resource_version (resource_id, version, status, content, change_reason, diff, created_by, "
    "created_at, updated_by, updated_at) VALUES (CAST(:id AS uuid), :version, 'draft', :content, :reason, "
    ":diff, "
    ":actor, :now, :actor, :now)"
).bindparams(bindparam("content", type_=JSONB), bindparam("diff", type_=JSONB))
_INSERT_HISTORY = text(
    "INSERT INTO resource_history (resource_id, version, action, actor, actor_department, at, note, diff) "
    "VALUES (CAST(:id AS uuid), :version, :action, :actor, :department, :now, :note, :diff)"
).bindparams(bindparam("diff", type_=JSONB))


async def insert_resources(conn: Any, rows: list[dict[str, Any]]) -> None:
    """New resources, each with its version 1 draft and a 'created' history entry (one round trip each)."""
    if not rows:
        return
    await conn.execute(_INSERT_RESOURCE, rows)
    await conn.execute(_INSERT_VERSION, [{**r, "version": 1, "reason": r.get("reason"), "diff": []} for r in rows])
    await conn.execute(
        _INSERT_HISTORY,
        [{**r, "version": 1, "action": "created", "note": r.get("reason"), "diff": []} for r in rows],
    )


async def insert_version(
    conn: Any,
    *,
    resource_id: str,
    version: int,
    content: dict[str, Any],
    reason: str | None,
    diff: list[dict[str, Any]],
    actor: str,
    now: datetime,
) -> None:
    await conn.execute(
        _INSERT_VERSION,
        {
            "id": resource_id,
            "version": version,
            "content": content,
            "reason": reason,
            "diff": diff,
            "actor": actor,
            "now": now,
        },
    )
    await conn.execute(
        text(
            "UPDATE resource SET pending_version = :v, pending_status = 'draft', latest_version = :v, "
            "updated_at = :now WHERE id = CAST(:id AS uuid)"
        ),
        {"id": resource_id, "v": version, "now": now},
    )


async def update_draft(
    conn: Any,
    *,
    resource_id: str,
    version: int,
    content: dict[str, Any],
    reason: str | None,
    diff: list[dict[str, Any]],
    actor: str,
    now: datetime,
) -> None:
    await conn.execute(
        text(
            "UPDATE resource_version SET content = :content, change_reason = coalesce(:reason, "
            "change_reason), "
            "diff = :diff, status = 'draft', updated_by = :actor, updated_at = :now "
            "WHERE resource_id = CAST(:id AS uuid) AND version = :version"
        ).bindparams(bindparam("content", type_=JSONB), bindparam("diff", type_=JSONB)),
        {
            "id": resource_id,
            "version": version,
            "content": content,
            "reason": reason,
            "diff": diff,
            "actor": actor,
            "now": now,
        },
    )
    await conn.execute(
        text("UPDATE resource SET pending_status = 'draft', updated_at = :now WHERE id = CAST(:id AS uuid)"),
        {"id": resource_id, "now": now},
    )


async def set_working_name(conn: Any, resource_id: str, name: str, provider_name: str) -> None:
    await conn.execute(
        text("UPDATE resource SET name = :name, provider_name = :pn WHERE id = CAST(:id AS uuid)"),
        {"id": resource_id, "name": name, "pn": provider_name},
    )


async def history(
    conn: Any,
    *,
    resource_id: str,
    version: int,
    action: str,
    actor: str,
    department: str | None,
    now: datetime,
    note: str | None = None,
    diff: list[dict[str, Any]] | None = None,
) -> None:
    await conn.execute(
        _INSERT_HISTORY,
        {
            "id": resource_id,
            "version": version,
            "action": action,
            "actor": actor,
            "department": department,
            "now": now,
            "note": note,
            "diff": diff or [],
        },
    )


async def version_row(conn: Any, resource_id: str, version: int) -> Any:
    return (
        await conn.execute(
            text(
                "SELECT version, status, content, change_reason, diff, created_by, created_at, updated_by, "
                "updated_at, submitted_by, submitted_at, reviewed_by, reviewed_at, review_comment, "
                "published_on "
                "FROM resource_version WHERE resource_id = CAST(:id AS uuid) AND version = :v"
            ),
            {"id": resource_id, "v": version},
        )
    ).one_or_none()


async def mark_submitted(
    conn: Any, resource_id: str, version: int, *, actor: str, now: datetime, reason: str | None
) -> None:
    await conn.execute(
        text(
            "UPDATE resource_version SET status = 'submitted', submitted_by = :actor, submitted_at = :now, "
            "change_reason = coalesce(:reason, change_reason), reviewed_by = NULL, reviewed_at = NULL, "
            "review_comment = NULL WHERE resource_id = CAST(:id AS uuid) AND version = :v"
        ),
        {"id": resource_id, "v": version, "actor": actor, "now": now, "reason": reason},
    )
    await conn.execute(
        text("UPDATE resource SET pending_status = 'submitted', updated_at = :now WHERE id = CAST(:id AS uuid)"),
        {"id": resource_id, "now": now},
    )


async def mark_returned(conn: Any, resource_id: str, version: int, *, actor: str, now: datetime, comment: str) -> None:
    await conn.execute(
        text(
            "UPDATE resource_version SET status = 'returned', reviewed_by = :actor, reviewed_at = :now, "
            "review_comment = :comment WHERE resource_id = CAST(:id AS uuid) AND version = :v"
        ),
        {"id": resource_id, "v": version, "actor": actor, "now": now, "comment": comment},
    )
    await conn.execute(
        text("UPDATE resource SET pending_status = 'returned', updated_at = :now WHERE id = CAST(:id AS uuid)"),
        {"id": resource_id, "now": now},
    )


async def next_sequence(conn: Any, classification_code: str) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "INSERT INTO code_sequence (classification_code, last_value) VALUES (:c, 1) "
                    "ON CONFLICT (classification_code) DO UPDATE SET last_value = code_sequence.last_value "
                    "+ 1 "
                    "RETURNING last_value"
                ),
                {"c": classification_code},
            )
        ).scalar_one()
    )


async def mark_published(
    conn: Any,
    *,
    resource_id: str,
    version: int,
    previous: int | None,
    code: str,
    content: dict[str, Any],
    actor: str,
    now: datetime,
    today: date,
    comment: str | None,
) -> None:
    if previous is not None:
        await conn.execute(
            text(
                "UPDATE resource_version SET status = 'superseded' WHERE resource_id = CAST(:id AS uuid) "
                "AND version = :v"
            ),
            {"id": resource_id, "v": previous},
        )
    await conn.execute(
        text(
            "UPDATE resource_version SET status = 'published', reviewed_by = :actor, reviewed_at = :now, "
            "review_comment = :comment, published_on = :today WHERE resource_id = CAST(:id AS uuid) AND "
            "version = :v"
        ),
        {"id": resource_id, "v": version, "actor": actor, "now": now, "today": today, "comment": comment},
    )
    await conn.execute(
        text(
            "UPDATE resource SET status = 'published', code = :code, published_version = :v, "
            "pending_version = NULL, "
            "pending_status = NULL, name = :name, provider_name = :pn, updated_at = :now WHERE id = "
            "CAST(:id AS uuid)"
        ),
        {
            "id": resource_id,
            "v": version,
            "code": code,
            "name": content["name"],
            "pn": content["provider_name"],
            "now": now,
        },
    )


async def mark_withdrawn(
    conn: Any,
    *,
    resource_id: str,
    published: int,
    pending: int | None,
    actor: str,
    now: datetime,
    reason: str,
) -> None:
    await conn.execute(
        text("UPDATE resource_version SET status = 'withdrawn' WHERE resource_id = CAST(:id AS uuid) AND version = :v"),
        {"id": resource_id, "v": published},
    )
    if pending is not None:
        await conn.execute(
            text(
                "UPDATE resource_version SET status = 'discarded' WHERE resource_id = CAST(:id AS uuid) "
                "AND version = :v"
            ),
            {"id": resource_id, "v": pending},
        )
    await conn.execute(
        text(
            "UPDATE resource SET status = 'withdrawn', pending_version = NULL, pending_status = NULL, "
            "withdrawn_by = :actor, withdrawn_at = :now, withdrawn_reason = :reason, updated_at = :now "
            "WHERE id = CAST(:id AS uuid)"
        ),
        {"id": resource_id, "actor": actor, "now": now, "reason": reason},
    )
    await search.remove_postings(conn, [resource_id])
    for table in ("published_resource", "published_snapshot"):
        await conn.execute(text(f"DELETE FROM {table} WHERE resource_id = CAST(:id AS uuid)"), {"id": resource_id})


async def discard_pending(conn: Any, *, state: ResourceState, now: datetime) -> None:
    """Drop the working draft; a resource that was never published goes with it (kept, marked discarded)."""
    await conn.execute(
        text("UPDATE resource_version SET status = 'discarded' WHERE resource_id = CAST(:id AS uuid) AND version = :v"),
        {"id": state.id, "v": state.pending_version},
    )
    status = "'discarded'" if state.published_version is None else "status"
    await conn.execute(
        text(
            f"UPDATE resource SET pending_version = NULL, pending_status = NULL, status = {status}, "
            "updated_at = :now WHERE id = CAST(:id AS uuid)"
        ),
        {"id": state.id, "now": now},
    )


_UPSERT_PUBLISHED = text(
    """
    INSERT INTO published_resource (resource_id, code, name, provider_code, resource_class, share_type,
        share_method_type, update_cycle, format_category, open_to_public, publish_date, document)
    VALUES (CAST(:resource_id AS uuid), :code, :name, :provider_code, :resource_class, :share_type,
        :share_method_type, :update_cycle, :format_category, :open_to_public, :publish_date,
        CAST(:document AS tsvector))
    ON CONFLICT (resource_id) DO UPDATE SET code = excluded.code, name = excluded.name,
        provider_code = excluded.provider_code, resource_class = excluded.resource_class,
        share_type = excluded.share_type, share_method_type = excluded.share_method_type,
        update_cycle = excluded.update_cycle, format_category = excluded.format_category,
        open_to_public = excluded.open_to_public, publish_date = excluded.publish_date,
        document = excluded.document
    """
)
_UPSERT_SNAPSHOT = text(
    "INSERT INTO published_snapshot (resource_id, snapshot) VALUES (CAST(:resource_id AS uuid), :snapshot) "
    "ON CONFLICT (resource_id) DO UPDATE SET snapshot = excluded.snapshot"
).bindparams(bindparam("snapshot", type_=JSONB))
_UPSERT_PROVIDER = text(
    "INSERT INTO provider (code, name) VALUES (:provider_code, :provider_name) "
    "ON CONFLICT (code) DO UPDATE SET name = excluded.name"
)


def published_row(snapshot: dict[str, Any], document: str) -> dict[str, Any]:
    """The live catalog's row of a published snapshot (JSON form), with its search document."""
    return {
        "resource_id": snapshot["id"],
        "code": snapshot["code"],
        "name": snapshot["name"],
        "provider_code": snapshot["provider_code"],
        "provider_name": snapshot["provider_name"],
        "resource_class": snapshot["resource_class"],
        "share_type": snapshot["share_type"],
        "share_method_type": snapshot["share_method_type"],
        "update_cycle": snapshot["update_cycle"],
        "format_category": snapshot["format_category"],
        "open_to_public": snapshot["open_to_public"],
        "publish_date": date.fromisoformat(snapshot["publish_date"]),
        "document": document,
        "snapshot": snapshot,
    }


async def upsert_published(conn: Any, rows: list[dict[str, Any]]) -> None:
    await conn.execute(_UPSERT_PUBLISHED, rows)
    await conn.execute(_UPSERT_SNAPSHOT, rows)
    await conn.execute(_UPSERT_PROVIDER, rows)


async def published_snapshot(conn: Any, resource_id: str) -> dict[str, Any] | None:
    return (
        await conn.execute(
            text("SELECT snapshot FROM published_snapshot WHERE resource_id = CAST(:id AS uuid)"),
            {"id": resource_id},
        )
    ).scalar_one_or_none()


async def live_codes(conn: Any, codes: list[str]) -> frozenset[str]:
    if not codes:
        return frozenset()
    rows = await conn.execute(text("SELECT code FROM published_resource WHERE code = ANY(:codes)"), {"codes": codes})
    return frozenset(r.code for r in rows)


async def resources_by_code(conn: Any, codes: list[str]) -> dict[str, ResourceState]:
    rows = await conn.execute(text(f"SELECT {_STATE_COLUMNS} FROM resource WHERE code = ANY(:codes)"), {"codes": codes})
    return {r.code: ResourceState(**r._mapping) for r in rows}


_RESOURCE_LIST = (
    "SELECT r.id::text AS id, r.code, r.name, r.provider_code, r.provider_name, r.status, "
    "r.published_version, "
    "r.pending_version, r.pending_status, r.latest_version, r.created_at, r.updated_at, r.withdrawn_reason, "
    "v.review_comment AS pending_review_comment FROM resource r LEFT JOIN resource_version v "
    "ON v.resource_id = r.id AND v.version = r.pending_version"
)


async def department_resources(
    conn: Any, *, department: str, statuses: list[str] | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    params: dict[str, Any] = {"d": department, "limit": limit, "offset": offset}
    where = "r.provider_code = :d AND r.status <> 'discarded'"
    if statuses is not None:
        where += " AND r.status = ANY(:statuses)"
        params["statuses"] = statuses
    rows = await conn.execute(
        text(f"{_RESOURCE_LIST} WHERE {where} ORDER BY r.updated_at DESC, r.id LIMIT :limit OFFSET :offset"),
        params,
    )
    total = (await conn.execute(text(f"SELECT count(*) FROM resource r WHERE {where}"), params)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def review_queue(conn: Any, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    rows = await conn.execute(
        text(
            f"{_RESOURCE_LIST} WHERE r.pending_status = 'submitted' ORDER BY r.updated_at, r.id "
            "LIMIT :limit OFFSET :offset"
        ),
        {"limit": limit, "offset": offset},
    )
    total = (await conn.execute(text("SELECT count(*) FROM resource WHERE pending_status = 'submitted'"))).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def resource_row(conn: Any, resource_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(text(f"{_RESOURCE_LIST} WHERE r.id = CAST(:id AS uuid)"), {"id": resource_id})
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


async def versions(
    conn: Any, resource_id: str, *, include_pending: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = "resource_id = CAST(:id AS uuid)"
    if not include_pending:
        where += " AND status IN ('published', 'superseded', 'withdrawn')"
    params = {"id": resource_id, "limit": limit, "offset": offset}
    rows = await conn.execute(
        text(
            "SELECT version, status, change_reason, diff, created_by, created_at, updated_by, updated_at, "
            "submitted_by, submitted_at, reviewed_by, reviewed_at, review_comment, published_on "
            f"FROM resource_version WHERE {where} ORDER BY version DESC LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    total = (await conn.execute(text(f"SELECT count(*) FROM resource_version WHERE {where}"), params)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def history_entries(conn: Any, resource_id: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    params = {"id": resource_id, "limit": limit, "offset": offset}
    rows = await conn.execute(
        text(
            "SELECT version, action, actor, actor_department, at, note, diff FROM resource_history "
            "WHERE resource_id = CAST(:id AS uuid) ORDER BY id LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    total = (
        await conn.execute(text("SELECT count(*) FROM resource_history WHERE resource_id = CAST(:id AS uuid)"), params)
    ).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def working_contents(conn: Any, *, department: str) -> list[dict[str, Any]]:
    """Each live resource of a department as it stands: its working draft if it has one, else published."""
    rows = await conn.execute(
        text(
            "SELECT r.code, v.content, v.published_on AS publish_date FROM resource r JOIN "
            "resource_version v "
            "ON v.resource_id = r.id AND v.version = coalesce(r.pending_version, r.published_version) "
            "WHERE r.provider_code = :d AND r.status IN ('draft', 'published') ORDER BY r.code NULLS LAST, "
            "r.created_at"
        ),
        {"d": department},
    )
    return [{**r.content, "code": r.code, "publish_date": r.publish_date} for r in rows]


async def published_contents(conn: Any, *, limit: int, department: str | None = None) -> list[dict[str, Any]]:
    where = "WHERE p.provider_code = :d" if department is not None else ""
    rows = await conn.execute(
        text(
            "SELECT s.snapshot FROM published_resource p JOIN published_snapshot s USING (resource_id) "
            f"{where} ORDER BY p.code LIMIT :limit"
        ),
        {"limit": limit, "d": department},
    )
    return [r.snapshot for r in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def base_resources_sharing_items(
    conn: Any, *, provider: str, names: list[str], labels: list[str]
) -> list[BaseResourceItems]:
    """Published base resources of other departments holding an item of one of these names or labels."""
    if not names and not labels:
        return []
    rows = await conn.execute(
        text(
            "SELECT p.code, p.name, p.provider_code, s.snapshot->'data_items' AS items "
            "FROM published_resource p JOIN published_snapshot s USING (resource_id) "
            "WHERE p.resource_class = 'base' AND p.provider_code <> :provider AND EXISTS ("
            "SELECT 1 FROM jsonb_array_elements(s.snapshot->'data_items') i "
            "WHERE upper(i->>'name') = ANY(:names) OR i->>'label' = ANY(:labels)) ORDER BY p.code"
        ),
        {"provider": provider, "names": [n.upper() for n in names], "labels": labels},
    )
    return [
        BaseResourceItems(
            code=r.code,
            name=r.name,
            provider_code=r.provider_code,
            items=tuple((str(i.get("name", "")), str(i.get("label", ""))) for i in _json(r.items) or []),
        )
        for r in rows
    ]


# --- obligations -------------------------------------------------------------------------------------------

_OBLIGATION_COLUMNS = (
    "id::text AS id, department_code, department_name, reason, description, recorded_by, recorded_at, "
    "recorded_on, "
    "working_days, due_on, due_unknown_years, status, overdue_since, fulfilled_at, "
    "fulfilled_by_resource::text AS fulfilled_by_resource, fulfilled_late, closed_by, closed_note, "
    "CAST(resource_ids AS text[]) AS resource_ids, CAST(updated_resource_ids AS text[]) AS updated_resource_ids"
)


async def open_obligations(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.execute(text(f"SELECT {_OBLIGATION_COLUMNS} FROM obligation WHERE status = 'open'"))
    return [dict(r._mapping) for r in rows]


async def move_obligation_due(conn: Any, obligation_id: str, *, due_on: date, unknown_years: list[int]) -> None:
    await conn.execute(
        text("UPDATE obligation SET due_on = :due, due_unknown_years = :years WHERE id = CAST(:id AS uuid)"),
        {"id": obligation_id, "due": due_on, "years": unknown_years},
    )


async def first_onboarding(conn: Any, code: str, *, at: datetime) -> bool:
    """Record that the department was seen onboarded; False when it was seen before."""
    row = (
        await conn.execute(
            text(
                "INSERT INTO department_onboarding (code, onboarded_at) VALUES (:c, :at) "
                "ON CONFLICT (code) DO NOTHING RETURNING code"
            ),
            {"c": code, "at": at},
        )
    ).first()
    return row is not None


async def insert_obligation(conn: Any, row: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "INSERT INTO obligation (id, department_code, department_name, reason, description, recorded_by, "
            "recorded_at, recorded_on, working_days, due_on, due_unknown_years, status, resource_ids) VALUES "
            "(CAST(:id AS uuid), :department_code, :department_name, :reason, :description, :recorded_by, "
            ":recorded_at, :recorded_on, :working_days, :due_on, :due_unknown_years, 'open', "
            "CAST(:resource_ids AS uuid[]))"
        ),
        row,
    )


async def obligation(conn: Any, obligation_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    if not is_uuid(obligation_id):
        return None
    row = (
        await conn.execute(
            text(
                f"SELECT {_OBLIGATION_COLUMNS} FROM obligation WHERE id = CAST(:id AS uuid)"
                f"{' FOR UPDATE' if lock else ''}"
            ),
            {"id": obligation_id},
        )
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


async def obligations(
    conn: Any, *, department: str | None, statuses: list[str] | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if department is not None:
        clauses.append("department_code = :d")
        params["d"] = department
    if statuses is not None:
        clauses.append("status = ANY(:s)")
        params["s"] = statuses
    where = " AND ".join(clauses) or "true"
    rows = await conn.execute(
        text(
            f"SELECT {_OBLIGATION_COLUMNS} FROM obligation WHERE {where} "
            "ORDER BY (status = 'overdue') DESC, due_on, recorded_at LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    total = (await conn.execute(text(f"SELECT count(*) FROM obligation WHERE {where}"), params)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def fulfil_obligations(conn: Any, *, department: str, resource_id: str, now: datetime, today: date) -> int:
    """A submission of `resource_id` settles the department's outstanding obligations that concern it: those
    naming no resource at once, those naming resources once each of them has been submitted since."""
    outstanding = (
        "department_code = :d AND status IN ('open', 'overdue') AND recorded_at <= :now "
        "AND (cardinality(resource_ids) = 0 OR CAST(:r AS uuid) = ANY(resource_ids))"
    )
    await conn.execute(
        text(
            "UPDATE obligation SET updated_resource_ids = array_append(updated_resource_ids, CAST(:r AS uuid)) "
            f"WHERE {outstanding} AND cardinality(resource_ids) > 0 "
            "AND NOT CAST(:r AS uuid) = ANY(updated_resource_ids)"
        ),
        {"d": department, "r": resource_id, "now": now},
    )
    result = await conn.execute(
        text(
            "UPDATE obligation SET status = 'fulfilled', fulfilled_at = :now, "
            "fulfilled_by_resource = CAST(:r AS uuid), fulfilled_late = (status = 'overdue' OR :today > due_on) "
            f"WHERE {outstanding} AND resource_ids <@ updated_resource_ids"
        ),
        {"d": department, "r": resource_id, "now": now, "today": today},
    )
    return int(result.rowcount or 0)


async def close_obligation(conn: Any, obligation_id: str, *, actor: str, note: str, now: datetime, today: date) -> None:
    await conn.execute(
        text(
            "UPDATE obligation SET status = 'closed', closed_by = :actor, closed_note = :note, "
            "fulfilled_at = :now, "
            "fulfilled_late = (status = 'overdue' OR :today > due_on) WHERE id = CAST(:id AS uuid)"
        ),
        {"id": obligation_id, "actor": actor, "note": note, "now": now, "today": today},
    )


async def newly_overdue(conn: Any, *, today: date) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            f"UPDATE obligation SET status = 'overdue', overdue_since = :today "
            f"WHERE status = 'open' AND due_on < :today RETURNING {_OBLIGATION_COLUMNS}"
        ),
        {"today": today},
    )
    return [dict(r._mapping) for r in rows]


# --- IT projects -------------------------------------------------------------------------------------------


async def insert_project(conn: Any, row: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "INSERT INTO project (id, department_code, name, description, status, registered_by, "
            "registered_at) "
            "VALUES (CAST(:id AS uuid), :department_code, :name, :description, 'registered', :actor, :now)"
        ),
        row,
    )


async def set_project_resources(conn: Any, project_id: str, resource_ids: list[str]) -> None:
    await conn.execute(text("DELETE FROM project_resource WHERE project_id = CAST(:id AS uuid)"), {"id": project_id})
    if resource_ids:
        await conn.execute(
            text(
                "INSERT INTO project_resource (project_id, resource_id, position) "
                "VALUES (CAST(:id AS uuid), CAST(:r AS uuid), :p)"
            ),
            [{"id": project_id, "r": r, "p": i} for i, r in enumerate(resource_ids)],
        )


_PROJECT_COLUMNS = (
    "id::text AS id, department_code, name, description, status, registered_by, registered_at, approved_by, "
    "approved_at, accepted_by, accepted_at"
)


async def project(conn: Any, project_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    if not is_uuid(project_id):
        return None
    row = (
        await conn.execute(
            text(f"SELECT {_PROJECT_COLUMNS} FROM project WHERE id = CAST(:id AS uuid){' FOR UPDATE' if lock else ''}"),
            {"id": project_id},
        )
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


async def project_resources(conn: Any, project_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT r.id::text AS id, r.code, r.name, r.status, r.pending_status FROM project_resource p "
            "JOIN resource r ON r.id = p.resource_id WHERE p.project_id = CAST(:id AS uuid) ORDER BY "
            "p.position"
        ),
        {"id": project_id},
    )
    return [dict(r._mapping) for r in rows]


async def projects(conn: Any, *, department: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    where = "department_code = :d" if department is not None else "true"
    params = {"d": department, "limit": limit, "offset": offset}
    rows = await conn.execute(
        text(
            f"SELECT {_PROJECT_COLUMNS} FROM project WHERE {where} ORDER BY registered_at DESC, id "
            "LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    total = (await conn.execute(text(f"SELECT count(*) FROM project WHERE {where}"), params)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


async def set_project_status(conn: Any, project_id: str, status: str, *, actor: str, now: datetime) -> None:
    column = {"approved": "approved", "accepted": "accepted"}[status]
    await conn.execute(
        text(f"UPDATE project SET status = :s, {column}_by = :actor, {column}_at = :now WHERE id = CAST(:id AS uuid)"),
        {"id": project_id, "s": status, "actor": actor, "now": now},
    )
