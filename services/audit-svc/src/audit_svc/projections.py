"""What supervision keeps from the events it logs: department names, facts the evaluation counts, daily usage
counts for statistics, and a rectification notice for every violation an event shows."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from govshare_common.calendar_store import CalendarService
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope
from govshare_common.profiles import Profile
from govshare_common.workdays import china_today

from audit_svc import notices
from audit_svc.domain import FACT_OF_EVENT, VIOLATION_OF_FACT, describe_violation, fact_department, fact_reference

USAGE_KINDS = {"query", "export", "feed"}


async def apply(uow: UnitOfWork, calendar: CalendarService, profile: Profile, envelopes: Sequence[Envelope]) -> None:
    usage: Counter[tuple[Any, str, str, str]] = Counter()
    usage_rows: Counter[tuple[Any, str, str, str]] = Counter()
    for env in envelopes:
        data = env.data
        if env.type == "exchange.access":
            kind = str(data.get("kind") or "query")
            key = (
                _day(data.get("at"), env.time),
                str(data.get("department_code") or ""),
                str(data.get("resource_code") or ""),
                kind if kind in USAGE_KINDS else "query",
            )
            usage[key] += 1
            usage_rows[key] += int(data.get("rows") or 0)
        elif env.type == "exchange.batch.ingested":
            key = (
                _day(data.get("at"), env.time),
                str(data.get("provider_code") or ""),
                str(data.get("resource_code") or ""),
                "ingest",
            )
            usage[key] += 1
            usage_rows[key] += int(data.get("inserted") or 0) + int(data.get("updated") or 0)
        elif env.type == "gateway.access":
            key = (
                _day(data.get("at"), env.time),
                str(data.get("department") or ""),
                str(data.get("resource") or ""),
                "gateway",
            )
            usage[key] += 1
        elif env.type == "identity.department.changed":
            await uow.execute(
                text(
                    "INSERT INTO department (code, name, status, profile, updated_at) VALUES (:c, :n, :s, :p, :t) "
                    "ON CONFLICT (code) DO UPDATE SET name = excluded.name, status = excluded.status, "
                    "profile = excluded.profile, updated_at = excluded.updated_at"
                ),
                {
                    "c": data.get("code"),
                    "n": data.get("name") or "",
                    "s": data.get("status"),
                    "p": data.get("profile"),
                    "t": env.time,
                },
            )
        elif env.type.startswith("request.") and data.get("request_id"):
            await uow.execute(
                text(
                    "INSERT INTO request_state (request_id, consumer_code, provider_code, resource_code, state, "
                    "due_date, updated_at) VALUES (:id, :c, :p, :r, :s, :due, :t) "
                    "ON CONFLICT (request_id) DO UPDATE SET state = excluded.state, due_date = excluded.due_date, "
                    "updated_at = excluded.updated_at WHERE request_state.updated_at <= excluded.updated_at"
                ),
                {
                    "id": data["request_id"],
                    "c": data.get("consumer_code"),
                    "p": data.get("provider_code"),
                    "r": data.get("resource_code"),
                    "s": data.get("state") or env.type.split(".", 1)[1],
                    "due": _date(data.get("due_date")),
                    "t": env.time,
                },
            )
        if env.type in FACT_OF_EVENT:
            await _fact(uow, calendar, profile, env)
    if usage:
        keys = list(usage)
        await uow.execute(
            text(
                "INSERT INTO usage_daily (day, department, resource, kind, count, rows) "
                "SELECT * FROM unnest(CAST(:d AS date[]), CAST(:dept AS text[]), CAST(:r AS text[]), "
                "CAST(:k AS text[]), CAST(:c AS bigint[]), CAST(:n AS bigint[])) "
                "ON CONFLICT (day, department, resource, kind) DO UPDATE SET "
                "count = usage_daily.count + excluded.count, rows = usage_daily.rows + excluded.rows"
            ),
            {
                "d": [k[0] for k in keys],
                "dept": [k[1] for k in keys],
                "r": [k[2] for k in keys],
                "k": [k[3] for k in keys],
                "c": [usage[k] for k in keys],
                "n": [usage_rows[k] for k in keys],
            },
        )


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _day(value: Any, fallback: datetime) -> Any:
    if isinstance(value, str):
        try:
            return china_today(datetime.fromisoformat(value))
        except ValueError:
            pass
    return china_today(fallback)


async def _fact(uow: UnitOfWork, calendar: CalendarService, profile: Profile, env: Envelope) -> None:
    kind, _ = FACT_OF_EVENT[env.type]
    data = env.data
    department = fact_department(env.type, data)
    if not department:
        return
    reference = fact_reference(env.type, data, env.subject)
    inserted = (
        await uow.execute(
            text(
                "INSERT INTO supervision_fact (event_id, type, kind, department, counterpart, reference, resource, "
                "occurred_at, data) VALUES (CAST(:id AS uuid), :type, :kind, :dept, :other, :ref, :res, :at, "
                "CAST(:data AS jsonb)) ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
            ),
            {
                "id": env.id,
                "type": env.type,
                "kind": kind,
                "dept": department,
                "other": data.get("consumer_code"),
                "ref": reference,
                "res": data.get("resource_code") or data.get("code"),
                "at": env.time,
                "data": json.dumps(data, ensure_ascii=False),
            },
        )
    ).first()
    violation = VIOLATION_OF_FACT.get(kind)
    if inserted is not None and violation is not None:
        await notices.open_notice(
            uow,
            calendar,
            department=str(department),
            violation=violation,
            reference=reference,
            description=describe_violation(violation, data),
            source_event_id=env.id,
            profile=profile,
        )
