"""Working days left until due dates, counted with the platform's calendar (govshare_common.workdays) so a
browser never carries its own copy of the rule. The calendar is read from the gateway with the caller's own
token: the console asks nothing the user could not ask."""

from __future__ import annotations

from datetime import date, datetime

import httpx

from govshare_common.errors import AppError
from govshare_common.workdays import CalendarData, WorkingCalendar, china_today

from console.domain import working_days_left


class CalendarUnavailable(AppError):
    status = 502
    code = "calendar_unavailable"


async def _calendar(http: httpx.AsyncClient, authorization: str, years: range) -> WorkingCalendar:
    holidays: dict[date, str | None] = {}
    makeup: dict[date, str | None] = {}
    known: set[int] = set()
    for year in years:
        resp = await http.get(f"/api/v1/platform/calendar/years/{year}", headers={"Authorization": authorization})
        if resp.status_code != 200:
            raise CalendarUnavailable(
                "暂时无法读取工作日历，剩余工作日无法计算。",
                f"The calendar could not be read ({resp.status_code}).",
            )
        body = resp.json()
        if body["known"]:
            known.add(year)
            holidays.update((date.fromisoformat(h["day"]), h["name"]) for h in body["holidays"])
            makeup.update((date.fromisoformat(h["day"]), h["name"]) for h in body["makeup_workdays"])
    return WorkingCalendar(CalendarData(holidays, makeup, frozenset(known)))


async def days_left(
    http: httpx.AsyncClient, authorization: str, now_at: datetime, dues: list[date]
) -> tuple[date, dict[str, int]]:
    today = china_today(now_at)
    if not dues:
        return today, {}
    years = range(min(today.year, *(d.year for d in dues)), max(today.year, *(d.year for d in dues)) + 1)
    calendar = await _calendar(http, authorization, years)
    return today, {d.isoformat(): working_days_left(calendar, today, d) for d in dues}
