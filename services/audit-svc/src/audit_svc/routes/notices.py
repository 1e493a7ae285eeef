"""/api/v1/supervision/notices and /violations: rectification notices and reports of use beyond purpose."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from govshare_common.errors import Forbidden, NotFound, ValidationFailed, field_error
from govshare_common.identifiers import InvalidIdentifier, validate_uscc
from govshare_common.service import UoW

from audit_svc import notices
from audit_svc.domain import describe_violation
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

router = APIRouter(prefix=SUPERVISION, tags=["supervision"])


class AnswerBody(BaseModel):
    answer: str = Field(min_length=1, max_length=8000, description="整改情况书面说明")


class DecisionBody(BaseModel):
    note: str = Field(min_length=1, max_length=4000, description="办结或升级督办意见")


class ViolationReport(BaseModel):
    department_code: str = Field(min_length=1, max_length=18, description="超出用途使用数据的部门代码")
    resource_code: str = Field(min_length=1, max_length=64, description="信息资源代码")
    grant_id: str | None = Field(default=None, max_length=64, description="授权编号")
    description: str = Field(min_length=1, max_length=4000, description="超出用途使用的情况")


@router.get("/notices", summary="整改通知（平台管理员、审计员看全部；部门看本部门）")
async def list_notices(
    uow: UoW,
    principal: Supervisor,
    department: Annotated[str | None, Query(description="部门代码")] = None,
    status: Annotated[list[Literal["open", "answered", "closed", "escalated"]] | None, Query()] = None,
    violation: Annotated[str | None, Query(description="违规类型")] = None,
    overdue: Annotated[bool, Query(description="只看逾期未整改")] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await notices.list_notices(
        uow,
        department=department_scope(principal, department),
        statuses=list(status) if status else None,
        violation=violation,
        overdue_only=overdue,
        limit=limit,
        offset=offset,
    )
    return page(items, total, limit, offset)


@router.get("/notices/{notice_id}", summary="整改通知详情")
async def get_notice(uow: UoW, notice_id: str, principal: Supervisor) -> dict[str, Any]:
    notice = await notices.get(uow, notice_id)
    if not notices.visible_to(principal, notice):
        raise NotFound("整改通知不存在。", "No such notice.")
    return notice


@router.post(
    "/notices/{notice_id}/answer", summary="书面反馈整改情况（部门信息资源管理员；发给平台管理机构的由平台管理员）"
)
async def answer_notice(uow: UoW, notice_id: str, body: AnswerBody, principal: Reporter) -> dict[str, Any]:
    return await notices.answer(uow, principal, notice_id, text_=body.answer.strip())


@router.post("/notices/{notice_id}/close", summary="办结整改通知（平台管理员）")
async def close_notice(
    request: Request, uow: UoW, notice_id: str, body: DecisionBody, principal: PlatformAdmin
) -> dict[str, Any]:
    return await notices.decide(
        uow,
        request.app.state.calendar,
        principal,
        notice_id,
        action="close",
        note=body.note.strip(),
        working_days=request.app.state.profile.rectification_wd,
    )


@router.post("/notices/{notice_id}/escalate", summary="升级督办（平台管理员），重新计算整改期限")
async def escalate_notice(
    request: Request, uow: UoW, notice_id: str, body: DecisionBody, principal: PlatformAdmin
) -> dict[str, Any]:
    return await notices.decide(
        uow,
        request.app.state.calendar,
        principal,
        notice_id,
        action="escalate",
        note=body.note.strip(),
        working_days=request.app.state.profile.rectification_wd,
    )


@router.post("/violations", status_code=201, summary="提供部门报告数据被超出用途使用，开具整改通知")
async def report_violation(request: Request, uow: UoW, body: ViolationReport, principal: Reporter) -> dict[str, Any]:
    try:
        department = validate_uscc(body.department_code).value
    except InvalidIdentifier:
        raise ValidationFailed(
            "部门代码不是有效的统一社会信用代码。",
            "department_code is not a well-formed unified social credit code.",
            details={"fields": [field_error("department_code", "部门代码格式不正确。", "Malformed code.")]},
        ) from None
    if principal.department == department:
        raise Forbidden("不能报告本部门。", "A department cannot report itself.", code="self_report")
    data = {"resource_code": body.resource_code, "grant_id": body.grant_id}
    notice = await notices.open_notice(
        uow,
        request.app.state.calendar,
        department=department,
        violation="use_beyond_purpose",
        reference=f"report-{uuid.uuid4()}",
        description=describe_violation("use_beyond_purpose", data) + "；" + body.description.strip(),
        reported_by=principal.department or principal.subject,
        profile=request.app.state.profile,
    )
    assert notice is not None
    return notice
