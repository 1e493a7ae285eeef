"""Update obligations: the platform office records that a department must update its catalog (a law was
revised, its functions changed); the department has the profile's working days to do it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from govshare_common.auth import CurrentPrincipal, Principal
from govshare_common.clock import china_date
from govshare_common.identifiers import InvalidIdentifier, validate_uscc
from govshare_common.profiles import Profile
from govshare_common.service import UoW

from catalog_svc import domain, flows, store
from catalog_svc.domain import FieldProblem, ObligationReason
from catalog_svc.routes.common import PREFIX, Limit, Offset, PlatformAdmin, page, profile, sees_drafts

router = APIRouter(prefix=f"{PREFIX}/obligations", tags=["obligations"])


class ObligationBody(BaseModel):
    department_code: str = Field(min_length=1, max_length=18, description="部门统一社会信用代码")
    department_name: str | None = Field(default=None, max_length=100, description="部门名称")
    reason: ObligationReason = Field(description="更新事由")
    description: str = Field(min_length=1, max_length=4000, description="具体情况，如所修订的法规名称")
    confirm_code: bool = Field(default=False, description="代码校验位不符但确认无误时设为 true")
    resource_ids: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list,
        max_length=500,
        description="需要更新的本部门信息资源（不填为整个目录）；只有这些资源重新报送后义务才算履行",
    )


class CloseBody(BaseModel):
    note: str = Field(min_length=1, max_length=4000, description="办结说明")


def _department_code(body: ObligationBody) -> str:
    try:
        result = validate_uscc(body.department_code)
    except InvalidIdentifier as exc:
        raise domain.violation(
            [
                FieldProblem(
                    "department_code",
                    f"uscc_{exc.reason_code}",
                    "部门代码不是有效的统一社会信用代码（18 位）。",
                    "department_code is not a well-formed unified social credit code.",
                )
            ]
        ) from None
    if not result.check_ok and not body.confirm_code:
        raise domain.violation(
            [
                FieldProblem(
                    "department_code",
                    "uscc_check_failed",
                    "部门代码的校验位不符；如确认代码无误，请设置 confirm_code 后重新提交。",
                    "The code's check character does not match; set confirm_code if it is right.",
                )
            ]
        )
    return result.value


@router.post("", status_code=201, summary="登记目录更新义务（平台管理员）")
async def record(
    request: Request,
    uow: UoW,
    body: ObligationBody,
    principal: PlatformAdmin,
    prof: Annotated[Profile, Depends(profile)],
) -> dict[str, Any]:
    return await flows.record_obligation(
        uow,
        recorded_by=principal.subject,
        calendar=request.app.state.calendar,
        profile=prof,
        department_code=_department_code(body),
        department_name=body.department_name,
        reason=body.reason,
        description=body.description.strip(),
        resource_ids=body.resource_ids,
    )


def _scope(principal: Principal, department: str | None) -> str | None:
    """Which department's obligations the caller may list: all for the platform office, else its own."""
    if principal.has("platform_admin", "auditor"):
        return department
    if principal.department is None or (department is not None and department != principal.department):
        raise domain.NotOwner("只能查看本部门的目录更新义务。", "You may see only your department's obligations.")
    return principal.department


@router.get("", summary="目录更新义务（逾期在前）")
async def list_obligations(
    uow: UoW,
    principal: CurrentPrincipal,
    department: Annotated[str | None, Query(description="部门代码")] = None,
    status: Annotated[list[Literal["open", "overdue", "fulfilled", "closed"]] | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await store.obligations(
        uow.conn,
        department=_scope(principal, department),
        statuses=list(status) if status else None,
        limit=limit,
        offset=offset,
    )
    return page(items, total, limit, offset)


async def _visible(uow: UoW, principal: Principal, obligation_id: str, *, lock: bool = False) -> dict[str, Any]:
    row = await store.obligation(uow.conn, obligation_id, lock=lock)
    if row is None or not sees_drafts(principal, row["department_code"]):
        raise domain.Missing("目录更新义务不存在。", "No such obligation.")
    return row


@router.get("/{obligation_id}", summary="目录更新义务详情")
async def detail(uow: UoW, obligation_id: str, principal: CurrentPrincipal) -> dict[str, Any]:
    return await _visible(uow, principal, obligation_id)


@router.post("/{obligation_id}/close", summary="办结（平台管理员，如核实无需变更）")
async def close(uow: UoW, obligation_id: str, body: CloseBody, principal: PlatformAdmin) -> dict[str, Any]:
    row = await _visible(uow, principal, obligation_id, lock=True)
    if row["status"] not in ("open", "overdue"):
        raise domain.WorkflowConflict("该义务已办结。", "The obligation is already settled.")
    await store.close_obligation(
        uow.conn,
        obligation_id,
        actor=principal.subject,
        note=body.note.strip(),
        now=uow.clock.now(),
        today=china_date(uow.clock),
    )
    return await _visible(uow, principal, obligation_id)
