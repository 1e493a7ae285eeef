"""Evaluation (评估考核): each department's indicators for a month or a year, its score, the yearly report
per department and for the jurisdiction, and monthly progress. The rules (indicators, formula) are in
domain.py; this module gathers the numbers."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from govshare_common.sharing import PLATFORM_OFFICE

from audit_svc.domain import FORMULA, FORMULA_EN, Indicators, Period, rate, score

_FACT_FIELDS = {
    "resource_published": "resources_published",
    "resource_updated": "resources_updated",
    "catalog_overdue": "catalog_overdue",
    "data_stale": "data_stale",
    "request_received": "requests_received",
    "request_answered": "requests_answered",
    "request_overdue": "requests_overdue",
    "dispute_received": "disputes_received",
    "dispute_answered": "disputes_answered",
    "dispute_overdue": "disputes_overdue",
    "grant_issued": "grants_issued",
    "major_decision_cited": "major_decisions_cited",
    "major_decision_answered": "major_decisions_answered",
    "repeated_collection": "repeated_collections",
    "project_catalog_missing": "project_catalogs_missing",
    "open_data_demand_overdue": "open_data_demands_overdue",
}
_USAGE_FIELDS = {"query": "queries", "export": "exports", "feed": "subscriptions"}


async def indicators(conn: AsyncConnection, period: Period, department: str | None = None) -> dict[str, Indicators]:
    """Indicators per department for the period (every department the platform knows, active or not)."""
    start, end = period.instants()
    scope = "" if department is None else " AND department = :dept"
    params: dict[str, Any] = {"a": start, "b": end, "d1": period.first_day, "d2": period.end_day, "dept": department}
    counts: dict[str, dict[str, int]] = {}

    def add(dept: str, name: str, value: int) -> None:
        counts.setdefault(dept, {})
        counts[dept][name] = counts[dept].get(name, 0) + int(value)

    rows = await conn.execute(
        text(
            "SELECT department, kind, count(*) AS n FROM supervision_fact "
            f"WHERE occurred_at >= :a AND occurred_at < :b{scope} GROUP BY department, kind"
        ),
        params,
    )
    for r in rows:
        add(r.department, _FACT_FIELDS[r.kind], r.n)
    rows = await conn.execute(
        text(
            "SELECT f.department, count(*) AS n FROM supervision_fact f WHERE f.kind = 'request_answered' "
            f"AND f.occurred_at >= :a AND f.occurred_at < :b{scope.replace('department', 'f.department')} "
            "AND NOT EXISTS (SELECT 1 FROM supervision_fact o WHERE o.kind = 'request_overdue' "
            "AND o.reference = f.reference AND o.department = f.department AND o.occurred_at <= f.occurred_at) "
            "GROUP BY f.department"
        ),
        params,
    )
    for r in rows:
        add(r.department, "requests_answered_on_time", r.n)
    rows = await conn.execute(
        text(
            "SELECT department, kind, sum(count) AS n FROM usage_daily WHERE day >= :d1 AND day < :d2 "
            f"AND kind IN ('query', 'export', 'feed'){scope} GROUP BY department, kind"
        ),
        params,
    )
    for r in rows:
        if r.department:
            add(r.department, _USAGE_FIELDS[r.kind], r.n)
    rows = await conn.execute(
        text(
            "SELECT department_code AS department, "
            "count(*) FILTER (WHERE opened_at >= :a AND opened_at < :b) AS opened, "
            "count(*) FILTER (WHERE opened_at >= :a AND opened_at < :b AND violation = 'use_beyond_purpose') AS misuse, "
            "count(*) FILTER (WHERE opened_at < :b AND (closed_at IS NULL OR closed_at >= :b)) AS unresolved "
            f"FROM notice WHERE true{scope.replace('department', 'department_code')} GROUP BY department_code"
        ),
        params,
    )
    for r in rows:
        add(r.department, "notices_opened", r.opened)
        add(r.department, "use_beyond_purpose", r.misuse)
        add(r.department, "notices_unresolved", r.unresolved)
    known = await conn.execute(
        text(f"SELECT code FROM department WHERE true{scope.replace('department', 'code')}"), params
    )
    for r in known:
        counts.setdefault(r.code, {})
    if department is not None:
        counts.setdefault(department, {})
    return {dept: Indicators(**values) for dept, values in sorted(counts.items())}


async def department_names(conn: AsyncConnection) -> dict[str, str]:
    names = {r.code: r.name for r in await conn.execute(text("SELECT code, name FROM department"))}
    return {PLATFORM_OFFICE: "平台管理机构", **names}


def department_report(code: str, name: str | None, period: Period, ind: Indicators) -> dict[str, Any]:
    return {
        "department_code": code,
        "department_name": name,
        "period": period.label,
        "indicators": asdict(ind),
        "rates": {
            "requests_answered_on_time": rate(ind.requests_answered_on_time, ind.requests_received),
            "disputes_answered": rate(ind.disputes_answered, ind.disputes_received),
        },
        **score(ind),
    }


async def report(conn: AsyncConnection, period: Period, department: str | None = None) -> dict[str, Any]:
    """A department's report, or with department=None the jurisdiction's: every department and the totals."""
    found = await indicators(conn, period, department)
    names = await department_names(conn)
    departments = [department_report(code, names.get(code), period, ind) for code, ind in found.items()]
    totals = {f.name: sum(getattr(ind, f.name) for ind in found.values()) for f in fields(Indicators)}
    scores = [d["score"] for d in departments]
    return {
        "period": period.label,
        "year": period.year,
        "month": period.month,
        "formula": FORMULA,
        "formula_en": FORMULA_EN,
        "departments": departments,
        "totals": totals,
        "average_score": round(sum(scores) / len(scores), 2) if scores else None,
    }


async def monthly_progress(conn: AsyncConnection, year: int, month: int, department: str | None) -> dict[str, Any]:
    """The month's indicators beside the year so far (Xiangyang plan III.5: monthly progress)."""
    month_report = await report(conn, Period(year, month), department)
    ytd = Period(year)
    found = await indicators(conn, ytd, department)
    # Year to date: facts up to the end of the month only.
    end_of_month = Period(year, month).end_day
    if end_of_month < ytd.end_day:
        found = await _until(conn, year, end_of_month, department)
    return {
        **month_report,
        "year_to_date": {code: {**asdict(ind), "score": score(ind)["score"]} for code, ind in found.items()},
    }


async def _until(conn: AsyncConnection, year: int, end: date, department: str | None) -> dict[str, Indicators]:
    class _Span(Period):
        @property
        def end_day(self) -> date:
            return end

    return await indicators(conn, _Span(year), department)
