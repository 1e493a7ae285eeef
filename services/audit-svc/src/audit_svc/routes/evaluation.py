"""/api/v1/supervision: evaluation, yearly reports (JSON and .xlsx), monthly progress, statistics."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from govshare_common.bounds import FIRST_YEAR, LAST_YEAR, Day
from govshare_common.clock import china_date
from govshare_common.service import UoW

from audit_svc import evaluation, statistics
from audit_svc.domain import period
from audit_svc.routes.common import SUPERVISION, Supervisor, department_scope
from audit_svc.spreadsheet import yearly_workbook

router = APIRouter(prefix=SUPERVISION, tags=["evaluation"])

Year = Annotated[int, Query(ge=FIRST_YEAR, le=LAST_YEAR, description="年度")]
Month = Annotated[int | None, Query(ge=1, le=12, description="月份（不填为全年）")]
Department = Annotated[str | None, Query(description="部门代码（不填为全辖区）")]


@router.get("/evaluation", summary="评估考核：各部门指标与得分（含公式）")
async def evaluate(
    uow: UoW, principal: Supervisor, year: Year, month: Month = None, department: Department = None
) -> dict[str, Any]:
    return await evaluation.report(uow.conn, period(year, month), department_scope(principal, department))


@router.get("/reports/yearly", summary="年度评估报告（JSON；部门或全辖区）")
async def yearly(uow: UoW, principal: Supervisor, year: Year, department: Department = None) -> dict[str, Any]:
    return await evaluation.report(uow.conn, period(year), department_scope(principal, department))


@router.get("/reports/yearly.xlsx", summary="年度评估报告（Excel）")
async def yearly_xlsx(uow: UoW, principal: Supervisor, year: Year, department: Department = None) -> Response:
    report = await evaluation.report(uow.conn, period(year), department_scope(principal, department))
    name = f"evaluation-{year}" + (f"-{department}" if department else "") + ".xlsx"
    return Response(
        yearly_workbook(report),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/progress", summary="月度进展：当月指标与年度累计")
async def progress(
    uow: UoW,
    principal: Supervisor,
    year: Year,
    month: Annotated[int, Query(ge=1, le=12, description="月份")],
    department: Department = None,
) -> dict[str, Any]:
    period(year, month)
    return await evaluation.monthly_progress(uow.conn, year, month, department_scope(principal, department))


@router.get("/statistics", summary="统计：每日交换量、申请状态、逾期事项、热门资源与部门")
async def dashboard(
    uow: UoW,
    principal: Supervisor,
    since: Annotated[Day | None, Query(description="起始日期（默认 30 天前）")] = None,
    until: Annotated[Day | None, Query(description="截止日期（默认今天）")] = None,
    department: Department = None,
) -> dict[str, Any]:
    today = china_date(uow.clock)
    until = until or today
    since = since or until - timedelta(days=29)
    if since > until:
        since, until = until, since
    return await statistics.dashboard(
        uow.conn, since=since, until=until, department=department_scope(principal, department), today=today
    )
