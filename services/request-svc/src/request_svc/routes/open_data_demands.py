"""Open-data demands: the public files one without an account (the gateway lets exactly this POST through);
the provider's reviewers or the platform office see and answer them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from govshare_common.service import UoW

from request_svc import open_data_demands
from request_svc.routes.common import Calendar, CurrentProfile, Limit, Offset, Reader, Reviewer, page

router = APIRouter(prefix="/api/v1/requests/open-data-demands", tags=["open-data demands"])


class DemandBody(BaseModel):
    resource_code: str | None = Field(default=None, max_length=40, description="希望开放的信息资源代码（可不填）")
    subject: str = Field(min_length=2, max_length=200, description="需求标题")
    content: str = Field(min_length=4, max_length=4000, description="需求内容：希望开放的数据、用途")
    requester_name: str = Field(min_length=1, max_length=100, description="提出人或单位")
    requester_contact: str = Field(min_length=3, max_length=200, description="联系方式（电话或电子邮箱）")


class AnswerBody(BaseModel):
    answer: str = Field(min_length=2, max_length=4000, description="答复内容")


@router.post("", status_code=201, summary="提出公共数据开放需求（社会公众，无需登录）")
async def file(uow: UoW, body: DemandBody, prof: CurrentProfile, calendar: Calendar) -> dict[str, Any]:
    return await open_data_demands.file(
        uow,
        calendar,
        prof,
        resource_code=(body.resource_code or "").strip() or None,
        subject=body.subject.strip(),
        content=body.content.strip(),
        requester_name=body.requester_name.strip(),
        requester_contact=body.requester_contact.strip(),
    )


@router.get("", summary="开放需求：提供部门看应由本部门答复的，平台管理机构和审计员看全部")
async def list_demands(
    uow: UoW,
    principal: Reader,
    state: Annotated[Literal["pending", "answered"] | None, Query(description="状态")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await open_data_demands.listing(uow, principal, state=state, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.get("/{demand_id}", summary="开放需求详情")
async def detail(uow: UoW, demand_id: str, principal: Reader) -> dict[str, Any]:
    return await open_data_demands.get(uow, principal, demand_id)


@router.post("/{demand_id}/answer", summary="答复开放需求（提供部门审核员、管理员；平台管理机构）")
async def answer(uow: UoW, demand_id: str, body: AnswerBody, principal: Reviewer) -> dict[str, Any]:
    return await open_data_demands.answer(uow, principal, demand_id, text_=body.answer.strip())
