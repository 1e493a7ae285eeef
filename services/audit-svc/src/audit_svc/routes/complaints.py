"""/api/v1/supervision/complaints: written complaints (Hainan 003 Art.41), where the profile provides for them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from govshare_common.bounds import Day
from govshare_common.errors import NotFound
from govshare_common.service import UoW

from audit_svc import complaints
from audit_svc.routes.common import SUPERVISION, Limit, Offset, PlatformAdmin, Supervisor, department_scope, page


def complaints_enabled(request: Request) -> None:
    if not request.app.state.profile.complaints:
        raise NotFound(
            "本辖区规定未设书面投诉受理（仅海南省等配置启用）。",
            "This jurisdiction's profile does not provide for written complaints.",
            code="complaints_disabled",
        )


router = APIRouter(prefix=f"{SUPERVISION}/complaints", tags=["complaints"], dependencies=[Depends(complaints_enabled)])


class ComplaintBody(BaseModel):
    complainant_name: str = Field(min_length=1, max_length=100, description="投诉人")
    complainant_contact: str = Field(min_length=1, max_length=100, description="联系方式")
    department_code: str | None = Field(default=None, max_length=18, description="被投诉部门代码")
    subject: str = Field(min_length=1, max_length=200, description="事由")
    content: str = Field(min_length=1, max_length=20000, description="投诉内容（书面）")
    received_on: Day = Field(description="收到日期")
    channel: Literal["letter", "visit", "online", "fax"] = Field(description="来件方式")


class NoteBody(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class AnswerBody(BaseModel):
    answer: str = Field(min_length=1, max_length=20000, description="书面答复")


@router.post("", status_code=201, summary="登记书面投诉（平台管理员）")
async def register(request: Request, uow: UoW, body: ComplaintBody, principal: PlatformAdmin) -> dict[str, Any]:
    return await complaints.register(
        uow,
        request.app.state.calendar,
        principal,
        body=body.model_dump(),
        reply_wd=request.app.state.profile.complaint_reply_wd,
    )


@router.get("", summary="书面投诉（部门只看涉及本部门的，投诉人信息脱敏）")
async def list_complaints(
    uow: UoW,
    principal: Supervisor,
    department: Annotated[str | None, Query()] = None,
    status: Annotated[Literal["registered", "handling", "answered"] | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await complaints.list_complaints(
        uow, principal, department=department_scope(principal, department), status=status, limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


@router.get("/{complaint_id}", summary="书面投诉详情")
async def get_complaint(uow: UoW, complaint_id: str, principal: Supervisor) -> dict[str, Any]:
    return await complaints.get(uow, principal, complaint_id)


@router.post("/{complaint_id}/handle", summary="办理（平台管理员记录办理情况）")
async def handle(uow: UoW, complaint_id: str, body: NoteBody, principal: PlatformAdmin) -> dict[str, Any]:
    return await complaints.handle(uow, principal, complaint_id, note=body.note.strip())


@router.post("/{complaint_id}/answer", summary="书面答复（平台管理员）")
async def answer(uow: UoW, complaint_id: str, body: AnswerBody, principal: PlatformAdmin) -> dict[str, Any]:
    return await complaints.answer(uow, principal, complaint_id, answer_text=body.answer.strip())
