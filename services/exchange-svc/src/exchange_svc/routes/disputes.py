"""Disputes: a consumer raises one on a record's item (resource-bound); the provider answers it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator

from govshare_common.service import UoW

from exchange_svc import disputes
from exchange_svc.routes.common import PREFIX, RESOURCE, DataReader, Limit, Offset, Purpose, Sealing, Staff

router = APIRouter(tags=["disputes"])


class DisputeBody(BaseModel):
    key: str | None = Field(default=None, max_length=500, description="记录主键")
    subject: str | None = Field(default=None, max_length=18, description="身份标识（无主键时）")
    item: str = Field(min_length=1, max_length=64, description="有疑义的信息项")
    reason: str = Field(min_length=1, max_length=2000, description="疑义理由")

    @model_validator(mode="after")
    def _one_target(self) -> DisputeBody:
        if not (self.key or self.subject):
            raise ValueError("give key or subject")
        return self


class ConfirmBody(BaseModel):
    answer: str = Field(min_length=1, max_length=2000, description="核实意见")


class CorrectBody(BaseModel):
    value: Any = Field(description="更正后的值")
    answer: str = Field(min_length=1, max_length=2000, description="更正说明")


@router.post(f"{RESOURCE}/disputes", status_code=201, summary="对一条记录的信息项提出疑义（使用部门）")
async def raise_dispute(
    request: Request,
    uow: UoW,
    code: str,
    body: DisputeBody,
    principal: DataReader,
    sealer: Sealing,
    purpose: Purpose = None,
) -> dict[str, Any]:
    return await disputes.open_dispute(
        uow,
        principal,
        code=code,
        purpose=purpose,
        key=body.key,
        subject=body.subject,
        item=body.item,
        reason=body.reason.strip(),
        calendar=request.app.state.calendar,
        profile=request.app.state.profile,
        sealer=sealer,
    )


@router.get(f"{PREFIX}/disputes", summary="疑义：本部门提出的和收到的（抄送平台管理机构的，平台可见）")
async def list_disputes(
    uow: UoW,
    principal: Staff,
    sealer: Sealing,
    state: Annotated[Literal["open", "answered", "corrected", "overdue"] | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    return await disputes.listing(uow, principal, state=state, limit=limit, offset=offset, sealer=sealer)


@router.get(f"{PREFIX}/disputes/{{dispute_id}}", summary="疑义详情")
async def dispute_detail(uow: UoW, dispute_id: str, principal: Staff, sealer: Sealing) -> dict[str, Any]:
    return await disputes.detail(uow, principal, dispute_id, sealer)


@router.post(f"{PREFIX}/disputes/{{dispute_id}}/confirm", summary="核实无误（提供部门）")
async def confirm(uow: UoW, dispute_id: str, body: ConfirmBody, principal: Staff, sealer: Sealing) -> dict[str, Any]:
    return await disputes.confirm(uow, principal, dispute_id=dispute_id, answer=body.answer.strip(), sealer=sealer)


@router.post(f"{PREFIX}/disputes/{{dispute_id}}/correct", summary="更正数据（提供部门）")
async def correct(uow: UoW, dispute_id: str, body: CorrectBody, principal: Staff, sealer: Sealing) -> dict[str, Any]:
    return await disputes.correct(
        uow, principal, dispute_id=dispute_id, value=body.value, answer=body.answer.strip(), sealer=sealer
    )
