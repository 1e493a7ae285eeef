"""The working-day calendar's master copy: the platform office enters each new year's holiday notice here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from govshare_common.auth import Principal, authenticate, require_roles
from govshare_common.bounds import FIRST_YEAR, LAST_YEAR, Day
from govshare_common.calendar_store import CalendarDay, YearPublished
from govshare_common.errors import ValidationFailed, field_error
from govshare_common.service import UoW

from gateway import store

router = APIRouter(prefix="/api/v1/platform/calendar", tags=["calendar"])

PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]
AnyPrincipal = Annotated[Principal, Depends(authenticate)]


CalendarYear = Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR, description="年度")]


class YearNotice(BaseModel):
    """A State Council holiday notice for one year (国务院办公厅关于…部分节假日安排的通知)."""

    holidays: list[CalendarDay] = Field(description="放假日期（可含周末，周末将被忽略）")
    makeup_workdays: list[CalendarDay] = Field(default_factory=list, description="调休上班的周六、周日")
    notice: str | None = Field(default=None, description="通知文号，如 国办发明电〔2026〕x号")


@router.get("/years", summary="日历已知年份")
async def known_years(request: Request, _p: AnyPrincipal) -> dict[str, Any]:
    async with request.app.state.db.engine.connect() as conn:
        return {"years": await store.calendar_years(conn)}


@router.get("/years/{year}", summary="某年节假日与调休安排")
async def year_detail(request: Request, year: CalendarYear, _p: AnyPrincipal) -> dict[str, Any]:
    cal = await request.app.state.calendar.current()
    data = cal.data
    return {
        "year": year,
        "known": year in cal.known_years,
        "holidays": [{"day": d, "name": n} for d, n in sorted(data.holidays.items()) if d.year == year],
        "makeup_workdays": [{"day": d, "name": n} for d, n in sorted(data.makeup_workdays.items()) if d.year == year],
    }


@router.put("/years/{year}", summary="录入某年节假日安排（平台管理员）")
async def enter_year(
    request: Request, uow: UoW, year: CalendarYear, body: YearNotice, admin: PlatformAdmin
) -> dict[str, Any]:
    errors = []
    for i, d in enumerate(body.holidays):
        if d.day.year != year:
            errors.append(field_error(f"holidays.{i}.day", f"{d.day} 不在 {year} 年内。", f"{d.day} is not in {year}."))
    for i, d in enumerate(body.makeup_workdays):
        if d.day.year != year:
            errors.append(
                field_error(f"makeup_workdays.{i}.day", f"{d.day} 不在 {year} 年内。", f"{d.day} is not in {year}.")
            )
        elif d.day.weekday() < 5:
            errors.append(
                field_error(
                    f"makeup_workdays.{i}.day",
                    f"{d.day} 不是周六或周日，无需调休上班。",
                    f"{d.day} is not a Saturday or Sunday.",
                )
            )
    overlap = {d.day for d in body.holidays} & {d.day for d in body.makeup_workdays}
    if overlap:
        errors.append(
            field_error("makeup_workdays", "同一天不能既放假又调休上班。", f"Both off and working: {sorted(overlap)}")
        )
    if errors:
        raise ValidationFailed(
            "节假日安排有误，请按 details 修改。", "The notice has errors; see details.", details={"fields": errors}
        )
    event = YearPublished(
        year=year,
        holidays=[d for d in body.holidays if d.day.weekday() < 5],
        makeup_workdays=body.makeup_workdays,
        notice=body.notice,
        entered_by=admin.subject,
    )
    await request.app.state.calendar.publish_year(uow, event)
    return {"year": year, "holidays": len(event.holidays), "makeup_workdays": len(event.makeup_workdays)}


@router.get("/deadline", summary="按工作日计算期限")
async def deadline(
    request: Request,
    uow: UoW,
    _p: AnyPrincipal,
    start: Annotated[Day, Query(description="起算日（不计入）")],
    working_days: Annotated[int, Query(ge=0, le=400)],
) -> dict[str, Any]:
    result = await request.app.state.calendar.add_working_days(uow, start, working_days, purpose="deadline query")
    return {
        "start": start,
        "working_days": working_days,
        "due": result.due,
        "unknown_years": sorted(result.unknown_years),
    }
