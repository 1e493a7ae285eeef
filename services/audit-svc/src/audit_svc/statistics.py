"""Statistics for the console's dashboards: counts and daily series over a date range, optionally for one
department."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from audit_svc.domain import Period


async def dashboard(
    conn: AsyncConnection, *, since: date, until: date, department: str | None, today: date
) -> dict[str, Any]:
    """[since, until] inclusive, in China dates."""
    params: dict[str, Any] = {"a": since, "b": until, "dept": department, "today": today}
    dept = "" if department is None else " AND department = :dept"
    per_day = await conn.execute(
        text(
            "SELECT day, kind, sum(count) AS n, sum(rows) AS r FROM usage_daily WHERE day BETWEEN :a AND :b "
            f"AND kind IN ('query', 'export', 'feed', 'ingest'){dept} GROUP BY day, kind ORDER BY day"
        ),
        params,
    )
    series: dict[str, dict[str, Any]] = {}
    for r in per_day:
        day = series.setdefault(r.day.isoformat(), {"day": r.day.isoformat(), "total": 0})
        day[r.kind] = int(r.n)
        day["total"] += int(r.n)
    by_state = await conn.execute(
        text(
            "SELECT state, count(*) AS n FROM request_state WHERE true"
            + ("" if department is None else " AND (provider_code = :dept OR consumer_code = :dept)")
            + " GROUP BY state ORDER BY state"
        ),
        params,
    )
    start = Period(since.year, since.month).instants()[0]
    end = Period(until.year, until.month).instants()[1]
    overdue_facts = await conn.execute(
        text(
            "SELECT kind, count(*) AS n FROM supervision_fact WHERE kind IN "
            "('catalog_overdue', 'data_stale', 'request_overdue', 'dispute_overdue') "
            f"AND occurred_at >= :s AND occurred_at < :e{dept} GROUP BY kind"
        ),
        {**params, "s": start, "e": end},
    )
    open_notices = (
        await conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE status IN ('open', 'escalated')) AS open, "
                "count(*) FILTER (WHERE status IN ('open', 'escalated') AND due_on < :today) AS overdue "
                "FROM notice WHERE true" + ("" if department is None else " AND department_code = :dept")
            ),
            params,
        )
    ).one()

    async def top(column: str) -> list[dict[str, Any]]:
        rows = await conn.execute(
            text(
                f"SELECT {column} AS key, sum(count) AS n FROM usage_daily WHERE day BETWEEN :a AND :b "
                f"AND kind IN ('query', 'export', 'feed') AND {column} <> ''{dept} GROUP BY {column} "
                "ORDER BY n DESC, key LIMIT 10"
            ),
            params,
        )
        return [{column: r.key, "uses": int(r.n)} for r in rows]

    return {
        "since": since,
        "until": until,
        "department": department,
        "exchanges_per_day": list(series.values()),
        "requests_by_state": {r.state: int(r.n) for r in by_state},
        "overdue": {
            **{r.kind: int(r.n) for r in overdue_facts},
            "notices_open": int(open_notices.open),
            "notices_overdue": int(open_notices.overdue),
        },
        "top_resources": await top("resource"),
        "top_departments": await top("department") if department is None else [],
    }
