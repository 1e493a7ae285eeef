"""IT projects (政务信息化项目): a project registers its resource catalog before approval, and at acceptance
the platform checks that every resource in it is published — a project short of it is refused acceptance and
its department gets a rectification notice (findings.report_catalog_missing)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from govshare_common.auth import CurrentPrincipal, Principal
from govshare_common.service import UoW

from catalog_svc import domain, findings, flows, store
from catalog_svc.routes.common import PREFIX, DeptAdmin, Limit, Offset, PlatformAdmin, page, sees_drafts

router = APIRouter(prefix=f"{PREFIX}/projects", tags=["projects"])


class ProjectBody(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="项目名称")
    description: str | None = Field(default=None, max_length=4000, description="项目简介")
    resource_ids: list[str] = Field(default_factory=list, max_length=1000, description="项目信息资源目录")


class ProjectResourcesBody(BaseModel):
    resource_ids: list[str] = Field(max_length=1000, description="项目信息资源目录")


async def _detail(uow: UoW, principal: Principal, project_id: str) -> dict[str, Any]:
    row = await store.project(uow.conn, project_id)
    if row is None or not sees_drafts(principal, row["department_code"]):
        raise domain.Missing("信息化项目不存在。", "No such project.")
    resources = await store.project_resources(uow.conn, project_id)
    unpublished = [r for r in resources if r["status"] != "published"]
    return {**row, "resources": resources, "ready_for_acceptance": bool(resources) and not unpublished}


@router.post("", status_code=201, summary="登记信息化项目及其信息资源目录（立项前）")
async def register(uow: UoW, body: ProjectBody, principal: DeptAdmin) -> dict[str, Any]:
    name = domain.required_text(body.name, "name", "请填写项目名称。", "Give the project's name.")
    project_id = await flows.register_project(
        uow, principal, name=name, description=body.description, resource_ids=body.resource_ids
    )
    return await _detail(uow, principal, project_id)


@router.get("", summary="信息化项目")
async def list_projects(uow: UoW, principal: CurrentPrincipal, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    department = None if principal.has("platform_admin", "auditor") else principal.department
    if department is None and not principal.has("platform_admin", "auditor"):
        return page([], 0, limit, offset)
    items, total = await store.projects(uow.conn, department=department, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.get("/{project_id}", summary="信息化项目详情（含各资源发布状态）")
async def detail(uow: UoW, project_id: str, principal: CurrentPrincipal) -> dict[str, Any]:
    return await _detail(uow, principal, project_id)


@router.put("/{project_id}/resources", summary="调整项目信息资源目录（验收前）")
async def set_resources(uow: UoW, project_id: str, body: ProjectResourcesBody, principal: DeptAdmin) -> dict[str, Any]:
    await flows.set_project_resources(uow, principal, project_id, body.resource_ids)
    return await _detail(uow, principal, project_id)


@router.post("/{project_id}/approve", summary="立项审批：须已登记项目信息资源目录（平台管理员）")
async def approve(uow: UoW, project_id: str, principal: PlatformAdmin) -> dict[str, Any]:
    await flows.approve_project(uow, principal, project_id)
    return await _detail(uow, principal, project_id)


@router.post("/{project_id}/accept", summary="项目验收：项目信息资源须已全部发布（平台管理员）")
async def accept(request: Request, uow: UoW, project_id: str, principal: PlatformAdmin) -> dict[str, Any]:
    try:
        await flows.accept_project(uow, principal, project_id)
    except domain.AcceptanceRefused as refused:
        await findings.report_catalog_missing(request.app.state.db, refused, actor=principal.subject)
        raise
    return await _detail(uow, principal, project_id)
