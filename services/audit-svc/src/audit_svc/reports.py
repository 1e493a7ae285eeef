"""Department reports through the platform: the yearly report (Xiangyang by the end of December, 002 Art.17;
Beijing by the end of November, 004 Art.29) and the monthly progress (Xiangyang plan III.5, with its key
tasks), due on the profile's dates; a report missing after its due date is a violation (report_missing).
The platform office publishes the yearly evaluation, which every department may then read."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.calendar_store import CalendarService
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import Conflict, NotFound
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid

from audit_svc import evaluation, events, notices
from audit_svc.domain import REPORT_LABELS, describe_violation, period, period_label, periods_past_due, report_due

_COLUMNS = (
    "id::text AS id, department_code, kind, year, NULLIF(month, 0) AS month, content, key_tasks, due_on, "
    "submitted_by, submitted_at, submitted_on"
)


def _shape(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["key_tasks"] = d["key_tasks"] if not isinstance(d["key_tasks"], str) else json.loads(d["key_tasks"])
    d["kind_label"] = REPORT_LABELS[d["kind"]]
    d["period"] = period_label(d["kind"], d["year"], d["month"])
    d["late"] = d["submitted_on"] > d["due_on"]
    return d


async def submit(
    uow: UnitOfWork,
    principal: Principal,
    profile: Profile,
    *,
    department: str,
    kind: str,
    year: int,
    month: int | None,
    content: str,
    key_tasks: list[dict[str, Any]],
) -> dict[str, Any]:
    due = report_due(profile, kind, year, month if kind == "monthly" else None)
    report_id = str(uuid.uuid4())
    today = china_date(uow.clock)
    inserted = (
        await uow.execute(
            text(
                "INSERT INTO department_report (id, department_code, kind, year, month, content, key_tasks, due_on, "
                "submitted_by, submitted_at, submitted_on) VALUES (CAST(:id AS uuid), :d, :k, :y, :m, :c, "
                "CAST(:t AS jsonb), :due, :by, :at, :on) ON CONFLICT (department_code, kind, year, month) DO NOTHING "
                "RETURNING id"
            ),
            {
                "id": report_id,
                "d": department,
                "k": kind,
                "y": year,
                "m": (month or 0) if kind == "monthly" else 0,
                "c": content,
                "t": json.dumps(key_tasks, ensure_ascii=False),
                "due": due,
                "by": principal.subject,
                "at": uow.clock.now(),
                "on": today,
            },
        )
    ).first()
    if inserted is None:
        raise Conflict(
            f"本部门{period_label(kind, year, month)}的{REPORT_LABELS[kind]}已经报送。",
            f"Your department's {kind} report for this period was already submitted.",
            code="report_already_submitted",
        )
    uow.emit(
        events.REPORT_SUBMITTED,
        report_id,
        events.ReportSubmitted(
            report_id=report_id,
            department_code=department,
            kind=kind,
            year=year,
            month=month if kind == "monthly" else None,
            due_on=due,
            late=today > due,
            actor=principal.subject,
        ),
    )
    return await get(uow, report_id)


async def get(uow: UnitOfWork, report_id: str) -> dict[str, Any]:
    if not is_uuid(report_id):
        raise NotFound("报告不存在。", "No such report.")
    row = (
        await uow.execute(
            text(f"SELECT {_COLUMNS} FROM department_report WHERE id = CAST(:id AS uuid)"), {"id": report_id}
        )
    ).first()
    if row is None:
        raise NotFound("报告不存在。", "No such report.")
    return _shape(row)


async def listing(
    uow: UnitOfWork, *, department: str | None, kind: str | None, year: int | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = ["true"]
    params: dict[str, Any] = {"l": limit, "o": offset}
    for column, value in (("department_code", department), ("kind", kind), ("year", year)):
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    clause = " AND ".join(where)
    total = (await uow.execute(text(f"SELECT count(*) FROM department_report WHERE {clause}"), params)).scalar_one()
    rows = await uow.execute(
        text(
            f"SELECT {_COLUMNS} FROM department_report WHERE {clause} "
            "ORDER BY year DESC, month DESC, department_code LIMIT :l OFFSET :o"
        ),
        params,
    )
    return [_shape(r) for r in rows], int(total)


async def schedule(uow: UnitOfWork, profile: Profile, *, department: str | None, year: int) -> list[dict[str, Any]]:
    """For each known department, each report the profile asks for this year: its due date and whether it came."""
    today = china_date(uow.clock)
    periods: list[tuple[str, int | None]] = []
    if profile.yearly_report_due is not None:
        periods.append(("yearly", None))
    if profile.monthly_progress:
        periods.extend(("monthly", m) for m in range(1, 13))
    where, params = ("WHERE code = :d", {"d": department}) if department else ("", {})
    depts = (await uow.execute(text(f"SELECT code, name FROM department {where} ORDER BY code"), params)).all()
    got = {
        (r.department_code, r.kind, r.month or None): r
        for r in await uow.execute(text(f"SELECT {_COLUMNS} FROM department_report WHERE year = :y"), {"y": year})
    }
    out = []
    for d in depts:
        for kind, month in periods:
            due = report_due(profile, kind, year, month)
            found = got.get((d.code, kind, month))
            status = (
                ("submitted_late" if found.submitted_on > due else "submitted")
                if found is not None
                else ("missing" if today > due else "not_due")
            )
            out.append(
                {
                    "department_code": d.code,
                    "department_name": d.name,
                    "kind": kind,
                    "period": period_label(kind, year, month),
                    "month": month,
                    "due_on": due,
                    "status": status,
                    "report_id": found.id if found is not None else None,
                }
            )
    return out


async def flag_missing(uow: UnitOfWork, calendar: CalendarService, profile: Profile) -> int:
    """The job: a notice to every active department whose latest yearly report or monthly progress is past due
    and not in (once per department and period)."""
    today: date = china_date(uow.clock)
    opened = 0
    for kind, year, month, due in periods_past_due(profile, today):
        rows = await uow.execute(
            text(
                "SELECT d.code FROM department d WHERE coalesce(d.status, 'active') = 'active' AND NOT EXISTS ("
                "SELECT 1 FROM department_report r WHERE r.department_code = d.code AND r.kind = :k "
                "AND r.year = :y AND r.month = :m)"
            ),
            {"k": kind, "y": year, "m": month or 0},
        )
        label = period_label(kind, year, month)
        for r in rows.all():
            notice = await notices.open_notice(
                uow,
                calendar,
                department=r.code,
                violation="report_missing",
                reference=f"report:{kind}:{r.code}:{year}-{month or 0:02d}",
                description=describe_violation(
                    "report_missing", {"period": f"{label}{REPORT_LABELS[kind]}", "due_on": due}
                ),
                profile=profile,
            )
            opened += notice is not None
    return opened


async def publish_evaluation(uow: UnitOfWork, principal: Principal, *, year: int) -> dict[str, Any]:
    """The platform office publishes the year's evaluation (000 Art.21; 002 Art.16–17; 004 Art.29)."""
    report = await evaluation.report(uow.conn, period(year), None)
    now = uow.clock.now()
    await uow.execute(
        text(
            "INSERT INTO published_evaluation (year, report, published_by, published_at) VALUES (:y, "
            "CAST(:r AS jsonb), :by, :at) ON CONFLICT (year) DO UPDATE SET report = excluded.report, "
            "published_by = excluded.published_by, published_at = excluded.published_at"
        ),
        {"y": year, "r": json.dumps(report, ensure_ascii=False, default=str), "by": principal.subject, "at": now},
    )
    uow.emit(
        events.EVALUATION_PUBLISHED,
        f"evaluation-{year}",
        events.EvaluationPublished(
            year=year,
            departments=len(report["departments"]),
            average_score=report["average_score"],
            actor=principal.subject,
        ),
    )
    return await published(uow, year)


async def published(uow: UnitOfWork, year: int) -> dict[str, Any]:
    row = (
        await uow.execute(
            text("SELECT year, report, published_by, published_at FROM published_evaluation WHERE year = :y"),
            {"y": year},
        )
    ).first()
    if row is None:
        raise NotFound(
            f"{year}年度评估结果尚未发布。", f"The {year} evaluation is not published.", code="not_published"
        )
    d = dict(row._mapping)
    d["report"] = d["report"] if not isinstance(d["report"], str) else json.loads(d["report"])
    return d
