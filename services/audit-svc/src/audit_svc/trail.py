"""Reading the audit log: entries by filter, and the traces an auditor asks for (a person's or company's
records, a department's accesses, a resource's history, a grant's whole use)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

ACCESS_TYPES = ("gateway.access", "exchange.access")


@dataclass(frozen=True)
class EntryFilter:
    types: list[str] | None = None
    source: str | None = None
    department: str | None = None
    provider: str | None = None
    resource: str | None = None
    grant_id: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    first: int | None = None
    last: int | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses, params = ["true"], {}
        for column in ("source", "department", "provider", "resource", "grant_id", "actor"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"e.{column} = :{column}")
                params[column] = value
        if self.types:
            clauses.append("e.type = ANY(:types)")
            params["types"] = self.types
        if self.since is not None:
            clauses.append("e.occurred_at >= :since")
            params["since"] = self.since
        if self.until is not None:
            clauses.append("e.occurred_at < :until")
            params["until"] = self.until
        if self.first is not None:
            clauses.append("e.position >= :first")
            params["first"] = self.first
        if self.last is not None:
            clauses.append("e.position <= :last")
            params["last"] = self.last
        return " AND ".join(clauses), params


def entry(row: Any) -> dict[str, Any]:
    """An entry as the API shows it: the logged event (as recorded) with its place and hash."""
    body = json.loads(bytes(row.body))
    return {**body, "hash": bytes(row.hash).hex()}


async def entries(
    conn: AsyncConnection, flt: EntryFilter, *, limit: int, offset: int, subject_hash: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    where, params = flt.where()
    source = "audit_entry e"
    if subject_hash is not None:
        # Subjects are indexed apart; join on (position, recorded_at), the entry's key.
        source = (
            "audit_entry e JOIN (SELECT DISTINCT position, recorded_at FROM audit_subject WHERE subject_hash = :subject) s "
            "ON s.position = e.position AND s.recorded_at = e.recorded_at"
        )
        params["subject"] = subject_hash
    total = (await conn.execute(text(f"SELECT count(*) FROM {source} WHERE {where}"), params)).scalar_one()
    rows = await conn.execute(
        text(f"SELECT e.body, e.hash FROM {source} WHERE {where} ORDER BY e.position DESC LIMIT :l OFFSET :o"),
        {**params, "l": limit, "o": offset},
    )
    return [entry(r) for r in rows], int(total)


async def one(conn: AsyncConnection, position: int) -> dict[str, Any] | None:
    row = (await conn.execute(text("SELECT body, hash FROM audit_entry WHERE position = :p"), {"p": position})).first()
    return entry(row) if row else None


async def summary(conn: AsyncConnection) -> dict[str, Any]:
    head = (await conn.execute(text("SELECT position, hash, recorded_at FROM audit_head"))).one()
    sources = await conn.execute(text("SELECT source, last_seq FROM audit_source_head ORDER BY source"))
    return {
        "head_position": int(head.position),
        "head_hash": bytes(head.hash).hex(),
        "head_recorded_at": head.recorded_at,
        "sources": {r.source: int(r.last_seq) for r in sources},
    }
