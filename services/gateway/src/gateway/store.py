"""The gateway's identity and calendar tables, as the routes need them: every query the administration API
runs, so the route handlers stay HTTP only (sign-in's own queries are in gateway.sign_in)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# --- departments ---------------------------------------------------------------------------------------------


async def department_exists(conn: AsyncConnection, code: str) -> bool:
    found = await conn.execute(text("SELECT 1 FROM department WHERE code = :c"), {"c": code})
    return found.scalar_one_or_none() is not None


async def department(conn: AsyncConnection, code: str) -> Any:
    """The department with its jurisdiction's name and profile (both None for the platform's own)."""
    found = await conn.execute(
        text(
            "SELECT d.*, j.name AS jurisdiction_name, j.profile AS jurisdiction_profile FROM department d "
            "LEFT JOIN jurisdiction j ON j.code = d.jurisdiction_code WHERE d.code = :c"
        ),
        {"c": code},
    )
    return found.one()


async def insert_department(
    conn: AsyncConnection, *, code: str, name: str, level: str, parent: str | None, jurisdiction: str | None
) -> bool:
    """False when the code is registered already."""
    inserted = await conn.execute(
        text(
            "INSERT INTO department (code, name, level, parent_code, jurisdiction_code) "
            "VALUES (:code, :name, :level, :parent, :j) ON CONFLICT (code) DO NOTHING RETURNING code"
        ),
        {"code": code, "name": name, "level": level, "parent": parent, "j": jurisdiction},
    )
    return inserted.scalar_one_or_none() is not None


async def set_department_jurisdiction(conn: AsyncConnection, code: str, jurisdiction: str | None) -> bool:
    updated = await conn.execute(
        text("UPDATE department SET jurisdiction_code = :j WHERE code = :code RETURNING code"),
        {"j": jurisdiction, "code": code},
    )
    return updated.scalar_one_or_none() is not None


async def departments_page(
    conn: AsyncConnection, *, status: str | None, q: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    where = (
        "WHERE (CAST(:s AS text) IS NULL OR d.status = :s)"
        " AND (CAST(:q AS text) IS NULL OR strpos(d.name, :q) > 0 OR strpos(d.code, :q) > 0)"
    )
    params = {"s": status, "q": q}
    total = (await conn.execute(text(f"SELECT count(*) FROM department d {where}"), params)).scalar_one()
    rows = await conn.execute(
        text(
            "SELECT d.code, d.name, d.level, d.parent_code, d.status, d.filed_by, d.filed_at, d.jurisdiction_code, "
            "j.name AS jurisdiction_name, j.profile AS jurisdiction_profile FROM department d "
            f"LEFT JOIN jurisdiction j ON j.code = d.jurisdiction_code {where} ORDER BY d.code LIMIT :l OFFSET :o"
        ),
        {**params, "l": limit, "o": offset},
    )
    return int(total), [dict(r._mapping) for r in rows]


async def file_department(conn: AsyncConnection, code: str, *, by: str, at: datetime, commitment: str) -> bool:
    updated = await conn.execute(
        text("UPDATE department SET filed_by = :by, filed_at = :at, commitment = :c WHERE code = :code RETURNING code"),
        {"by": by, "at": at, "c": commitment, "code": code},
    )
    return updated.scalar_one_or_none() is not None


async def set_department_status(conn: AsyncConnection, code: str, status: str) -> bool:
    updated = await conn.execute(
        text("UPDATE department SET status = :s WHERE code = :code RETURNING code"), {"s": status, "code": code}
    )
    return updated.scalar_one_or_none() is not None


# --- jurisdictions hosted on this platform -------------------------------------------------------------------


async def jurisdiction(conn: AsyncConnection, code: str) -> Any:
    found = await conn.execute(text("SELECT code, name, profile FROM jurisdiction WHERE code = :c"), {"c": code})
    return found.one_or_none()


async def insert_jurisdiction(conn: AsyncConnection, *, code: str, name: str, profile: str, by: str) -> bool:
    """False when the code is registered already."""
    inserted = await conn.execute(
        text(
            "INSERT INTO jurisdiction (code, name, profile, created_by) VALUES (:code, :name, :profile, :by) "
            "ON CONFLICT (code) DO NOTHING RETURNING code"
        ),
        {"code": code, "name": name, "profile": profile, "by": by},
    )
    return inserted.scalar_one_or_none() is not None


async def jurisdictions(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT j.code, j.name, j.profile, j.created_at, count(d.code) AS departments FROM jurisdiction j "
            "LEFT JOIN department d ON d.jurisdiction_code = j.code GROUP BY j.code ORDER BY j.code"
        )
    )
    return [dict(r._mapping) for r in rows]


# --- users and clients ---------------------------------------------------------------------------------------

# What a department-scoped list may show and search, per table: never a hash or a secret.
_LISTS = {
    "app_user": (
        "id::text, username, display_name, department_code, roles, status, locked_until, password_changed_at",
        "username",
        ("username", "display_name"),
    ),
    "client": (
        "client_id, name, department_code, roles, status, cert_sha256, rate_per_second, burst, "
        "previous_valid_until, created_at",
        "created_at",
        ("name", "client_id"),
    ),
}


async def department_scoped_page(
    conn: AsyncConnection,
    table: str,
    *,
    department: str | None,
    status: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[dict[str, Any]]]:
    """A page of users or clients, of one department (or all when `department` is None), narrowed by a text
    that either search column contains and a status."""
    columns, order, search = _LISTS[table]
    where = (
        "WHERE (CAST(:d AS text) IS NULL OR department_code = :d)"
        " AND (CAST(:s AS text) IS NULL OR status = :s)"
        f" AND (CAST(:q AS text) IS NULL OR strpos({search[0]}, :q) > 0 OR strpos({search[1]}, :q) > 0)"
    )
    params = {"d": department, "s": status, "q": q}
    total = (await conn.execute(text(f"SELECT count(*) FROM {table} {where}"), params)).scalar_one()
    rows = await conn.execute(
        text(f"SELECT {columns} FROM {table} {where} ORDER BY {order} LIMIT :l OFFSET :o"),
        {**params, "l": limit, "o": offset},
    )
    return int(total), [dict(r._mapping) for r in rows]


async def user(conn: AsyncConnection, user_id: uuid.UUID) -> Any:
    return (
        await conn.execute(text("SELECT id, department_code, roles FROM app_user WHERE id = :id"), {"id": user_id})
    ).one_or_none()


async def insert_user(
    conn: AsyncConnection,
    *,
    user_id: uuid.UUID,
    username: str,
    display_name: str,
    department: str | None,
    roles: list[str],
    password_hash: str,
    by: str,
) -> bool:
    """False when the username is taken."""
    inserted = await conn.execute(
        text(
            "INSERT INTO app_user (id, username, display_name, department_code, roles, password_hash, created_by) "
            "VALUES (:id, :u, :n, :d, :r, :h, :by) ON CONFLICT (username) DO NOTHING RETURNING id"
        ),
        {
            "id": user_id,
            "u": username,
            "n": display_name,
            "d": department,
            "r": roles,
            "h": password_hash,
            "by": by,
        },
    )
    return inserted.scalar_one_or_none() is not None


async def update_user(conn: AsyncConnection, user_id: uuid.UUID, *, status: str | None, roles: list[str]) -> Any:
    return (
        await conn.execute(
            text(
                "UPDATE app_user SET status = COALESCE(:s, status), roles = :r WHERE id = :id "
                "RETURNING status, department_code"
            ),
            {"s": status, "r": roles, "id": user_id},
        )
    ).one()


async def client(conn: AsyncConnection, client_id: str) -> Any:
    return (
        await conn.execute(
            text("SELECT id, client_id, department_code, roles FROM client WHERE client_id = :c"), {"c": client_id}
        )
    ).one_or_none()


async def insert_client(
    conn: AsyncConnection,
    *,
    client_id: str,
    name: str,
    department: str,
    roles: list[str],
    secret_hash: str,
    cert_sha256: str | None,
    rate_per_second: float,
    burst: int,
    by: str,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO client (id, client_id, name, department_code, roles, secret_hash, cert_sha256, rate_per_second, "
            "burst, created_by) VALUES (:id, :cid, :n, :d, :r, :h, :cert, :rate, :burst, :by)"
        ),
        {
            "id": uuid.uuid4(),
            "cid": client_id,
            "n": name,
            "d": department,
            "r": roles,
            "h": secret_hash,
            "cert": cert_sha256,
            "rate": rate_per_second,
            "burst": burst,
            "by": by,
        },
    )


async def replace_client_secret(
    conn: AsyncConnection, client_id: str, *, secret_hash: str, previous_valid_until: datetime
) -> None:
    """The new secret's hash; the old one keeps working until `previous_valid_until`."""
    await conn.execute(
        text(
            "UPDATE client SET previous_secret_hash = secret_hash, previous_valid_until = :until, secret_hash = :h "
            "WHERE client_id = :c"
        ),
        {"until": previous_valid_until, "h": secret_hash, "c": client_id},
    )


async def set_client_status(conn: AsyncConnection, client_id: str, status: str) -> None:
    await conn.execute(text("UPDATE client SET status = :s WHERE client_id = :c"), {"s": status, "c": client_id})


# --- calendar ------------------------------------------------------------------------------------------------


async def calendar_years(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(text("SELECT year, source, notice, entered_at FROM calendar_year ORDER BY year"))
    return [dict(r._mapping) for r in rows]
