"""Shared data in a major decision (Beijing 004 Art.19): the consumer cites the source and asks consent; the
provider consents or refuses with a reason."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from govshare_common.service import UoW

from request_svc import major_decisions
from request_svc.routes.common import Limit, Offset, Reader, Reviewer, Writer, list_scope, page

router = APIRouter(prefix="/api/v1/grants", tags=["major decisions"])


class AskBody(BaseModel):
    title: str = Field(min_length=1, max_length=200, description="重大决策事项")
    description: str = Field(min_length=1, max_length=8000, description="如何使用共享数据")
    source_citation: str = Field(min_length=1, max_length=2000, description="注明的数据来源（提供部门、信息资源）")


class AnswerBody(BaseModel):
    decision: Literal["consent", "refuse"]
    reason: str | None = Field(default=None, max_length=4000, description="理由（不同意时必填）")


@router.get("/major-decisions", summary="重大决策使用共享数据：本部门提出的和需要本部门答复的")
async def list_decisions(
    uow: UoW,
    principal: Reader,
    state: Annotated[Literal["pending", "consented", "refused"] | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await major_decisions.listing(
        uow, department=list_scope(principal), state=state, limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


@router.get("/major-decisions/{decision_id}", summary="重大决策使用记录详情")
async def detail(uow: UoW, decision_id: str, principal: Reader) -> dict[str, Any]:
    return await major_decisions.get(uow, principal, decision_id)


@router.post(
    "/major-decisions/{decision_id}/answer", summary="提供部门答复：同意或不同意（须说明理由）在重大决策中使用"
)
async def answer(uow: UoW, decision_id: str, body: AnswerBody, principal: Reviewer) -> dict[str, Any]:
    return await major_decisions.answer(uow, principal, decision_id, decision=body.decision, reason=body.reason)


@router.post("/{grant_id}/major-decisions", status_code=201, summary="注明来源并征求提供部门同意将共享数据用于重大决策")
async def ask(request: Request, uow: UoW, grant_id: str, body: AskBody, principal: Writer) -> dict[str, Any]:
    return await major_decisions.ask(
        uow,
        principal,
        request.app.state.profile,
        grant_id=grant_id,
        title=body.title.strip(),
        description=body.description.strip(),
        source_citation=body.source_citation.strip(),
    )
