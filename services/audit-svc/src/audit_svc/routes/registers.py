"""/api/v1/supervision: what departments file with the platform office — accountable people, yearly reports
and monthly progress, information systems — with Xiangyang's metrics, and the published yearly evaluation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from govshare_common.auth import Principal
from govshare_common.bounds import FIRST_YEAR, LAST_YEAR, Day
from govshare_common.errors import Forbidden
from govshare_common.service import UoW

from audit_svc import accountable, reports, systems
from audit_svc.domain import PersonRole, ReportKind, SystemStatus
from audit_svc.routes.common import (
    SUPERVISION,
    Limit,
    Offset,
    PlatformAdmin,
    Reporter,
    Supervisor,
    department_scope,
    page,
)

router = APIRouter(prefix=SUPERVISION, tags=["registers"])

Year = Annotated[int, Query(ge=FIRST_YEAR, le=LAST_YEAR, description="年度")]
Department = Annotated[str | None, Query(max_length=18, description="部门代码（平台管理员、审计员可选）")]


def _profile(request: Request) -> Any:
    return request.app.state.profile


def _own_department(principal: Principal, department: str | None) -> str:
    """The department a filing is for: a department files its own; the platform office names one."""
    if principal.has("platform_admin") and department:
        return department
    if principal.department is None:
        raise Forbidden("请指明部门。", "Name the department (department_code).", code="no_department")
    if department and department != principal.department:
        raise Forbidden("只能为本部门报送。", "You may file only for your own department.", code="not_your_department")
    return principal.department


# --- accountable people -------------------------------------------------------------------------------------


class PersonBody(BaseModel):
    name: str = Field(min_length=1, max_length=50, description="姓名")
    title: str | None = Field(default=None, max_length=100, description="职务")
    contact: str | None = Field(default=None, max_length=100, description="办公电话")


@router.get("/accountable", summary="各部门责任人登记（本辖区要求而未登记的标出）")
async def accountable_register(
    request: Request,
    uow: UoW,
    principal: Supervisor,
    department: Department = None,
    missing: Annotated[bool, Query(description="只看缺少责任人的部门")] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total, required = await accountable.register(
        uow,
        _profile(request),
        department=department_scope(principal, department),
        missing_only=missing,
        limit=limit,
        offset=offset,
    )
    return page(items, total, limit, offset, required_roles=required)


@router.put("/accountable/{department_code}/{role}", summary="登记或更新责任人（本部门信息资源管理员或平台管理员）")
async def put_person(
    uow: UoW,
    department_code: Annotated[str, Path(max_length=18)],
    role: PersonRole,
    body: PersonBody,
    principal: Reporter,
) -> dict[str, Any]:
    return await accountable.put(
        uow,
        principal,
        department=department_code,
        role=role,
        name=body.name.strip(),
        title=(body.title or "").strip() or None,
        contact=(body.contact or "").strip() or None,
    )


@router.get("/accountable/{department_code}/history", summary="责任人变更记录")
async def person_history(
    uow: UoW,
    department_code: Annotated[str, Path(max_length=18)],
    principal: Supervisor,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    scope = department_scope(principal, department_code)
    assert scope is not None
    items, total = await accountable.history(uow, scope, limit=limit, offset=offset)
    return page(items, total, limit, offset)


# --- department reports -------------------------------------------------------------------------------------


class KeyTask(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="重点任务")
    progress: int = Field(ge=0, le=100, description="完成进度（%）")


class ReportBody(BaseModel):
    kind: ReportKind = Field(description="yearly 年度报告 / monthly 月度进展")
    year: int = Field(ge=FIRST_YEAR, le=LAST_YEAR)
    month: int | None = Field(default=None, ge=1, le=12, description="月度进展的月份")
    content: str = Field(min_length=1, max_length=50000, description="报告正文")
    key_tasks: list[KeyTask] = Field(default_factory=list, max_length=100, description="重点任务进展（月度）")
    department_code: str | None = Field(default=None, max_length=18, description="平台管理员代报时的部门")


@router.post("/department-reports", status_code=201, summary="报送年度报告或月度进展（部门信息资源管理员）")
async def submit_report(request: Request, uow: UoW, body: ReportBody, principal: Reporter) -> dict[str, Any]:
    return await reports.submit(
        uow,
        principal,
        _profile(request),
        department=_own_department(principal, body.department_code),
        kind=body.kind,
        year=body.year,
        month=body.month,
        content=body.content.strip(),
        key_tasks=[t.model_dump() for t in body.key_tasks],
    )


@router.get("/department-reports", summary="部门报送的年度报告与月度进展")
async def list_reports(
    uow: UoW,
    principal: Supervisor,
    department: Department = None,
    kind: Annotated[ReportKind | None, Query()] = None,
    year: Annotated[int | None, Query(ge=FIRST_YEAR, le=LAST_YEAR)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await reports.listing(
        uow, department=department_scope(principal, department), kind=kind, year=year, limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


@router.get("/department-reports/due", summary="报送时间表：按本辖区规定的期限，各部门已报、逾期未报")
async def report_schedule(
    request: Request,
    uow: UoW,
    principal: Supervisor,
    year: Year,
    department: Department = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> dict[str, Any]:
    rows = await reports.schedule(uow, _profile(request), department=department_scope(principal, department), year=year)
    return page(rows[offset : offset + limit], len(rows), limit, offset)


@router.post("/evaluation/{year}/publish", summary="发布年度评估结果（平台管理员）")
async def publish(
    uow: UoW, year: Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR)], principal: PlatformAdmin
) -> dict[str, Any]:
    return await reports.publish_evaluation(uow, principal, year=year)


@router.get("/evaluation/{year}/published", summary="已发布的年度评估结果（各部门可见）")
async def published(
    uow: UoW, year: Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR)], _principal: Supervisor
) -> dict[str, Any]:
    return await reports.published(uow, year)


# --- systems and metrics ------------------------------------------------------------------------------------


class SystemBody(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="信息系统名称")
    legacy: bool = Field(default=False, description="是否原有（存量）系统")
    status: SystemStatus = Field(
        description="planned 待整合 / integrated 已整合 / connected 已接入平台 / retired 已下线"
    )
    connected_on: Day | None = Field(default=None, description="接入平台日期")
    collaborative_apps: int = Field(default=0, ge=0, le=100000, description="协同应用数")
    department_code: str | None = Field(default=None, max_length=18, description="平台管理员代登记时的部门")


@router.post("/systems", status_code=201, summary="登记本部门信息系统（部门信息资源管理员）")
async def register_system(request: Request, uow: UoW, body: SystemBody, principal: Reporter) -> dict[str, Any]:
    return await systems.save(
        uow,
        principal,
        _profile(request),
        system_id=None,
        department=_own_department(principal, body.department_code),
        name=body.name.strip(),
        legacy=body.legacy,
        status=body.status,
        connected_on=body.connected_on,
        collaborative_apps=body.collaborative_apps,
    )


@router.put("/systems/{system_id}", summary="更新信息系统的整合、接入情况")
async def update_system(
    request: Request, uow: UoW, system_id: str, body: SystemBody, principal: Reporter
) -> dict[str, Any]:
    current = await systems.get(uow, _profile(request), system_id)
    return await systems.save(
        uow,
        principal,
        _profile(request),
        system_id=system_id,
        department=current["department_code"],
        name=body.name.strip(),
        legacy=body.legacy,
        status=body.status,
        connected_on=body.connected_on,
        collaborative_apps=body.collaborative_apps,
    )


@router.get("/systems", summary="信息系统登记（原有系统标出接入期限与是否逾期）")
async def list_systems(
    request: Request,
    uow: UoW,
    principal: Supervisor,
    department: Department = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await systems.listing(
        uow, _profile(request), department=department_scope(principal, department), limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


@router.get("/metrics", summary="整合共享指标：系统整合数、共享信息数、协同应用数、系统联通率、重点任务进展")
async def integration_metrics(
    request: Request, uow: UoW, principal: Supervisor, department: Department = None
) -> dict[str, Any]:
    return await systems.metrics(uow, _profile(request), department=department_scope(principal, department))
