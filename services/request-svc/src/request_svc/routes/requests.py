"""Share requests: submit, the provider's review, more information, escalation and coordination, lists,
the reviewers' worklist, the profile's request rules and (Hainan) the provider's stated reply terms."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from pydantic import BaseModel, Field

from govshare_common.auth import Principal, require_roles
from govshare_common.bounds import AwareMoment
from govshare_common.clock import china_date
from govshare_common.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from govshare_common.profiles import PROFILES, Profile
from govshare_common.service import UoW
from govshare_common.sharing import PURPOSES, Purpose

from request_svc import domain, flows, jurisdictions, store
from request_svc.domain import Application
from request_svc.federation import forwarding
from request_svc.routes.common import (
    Calendar,
    CurrentProfile,
    Limit,
    Offset,
    Reader,
    Reviewer,
    Writer,
    ensure_party,
    list_scope,
    own_department,
    page,
    reads_all,
    show_request,
)

router = APIRouter(prefix="/api/v1/requests", tags=["share requests"])

Text = Annotated[str, Field(max_length=4000)]


class SubmitBody(BaseModel):
    resource_code: str = Field(min_length=1, max_length=64, description="信息资源代码，如 101001/000001")
    items: list[Annotated[str, Field(max_length=64)]] = Field(max_length=2000, description="申请的信息项（字段名）")
    purposes: list[Purpose] = Field(min_length=1, max_length=5, description="共享用途")
    purpose_other: Text | None = Field(default=None, description="用途为“其他”时的具体说明")
    scope: Text = Field(description="知悉范围：哪些人员将看到数据")
    security_measures: Text = Field(description="安全保护措施")
    business_matter: Text = Field(description="所支撑的业务事项")
    policy_basis: Text | None = Field(default=None, description="政策依据（海南省：有条件共享须注明）")
    valid_until: AwareMoment | None = Field(default=None, description="希望的授权有效期至")
    renews_grant_id: str | None = Field(default=None, max_length=64, description="续期：原授权编号")
    written_application: Annotated[str, Field(max_length=20000)] | None = Field(
        default=None, description="书面申请正文（不予共享的资源直接进入要求书面申请的协调环节时必填）"
    )


class QuestionBody(BaseModel):
    question: Text | None = Field(default=None, description="需要补充的材料或说明")


class AnswerBody(BaseModel):
    answer: Text | None = Field(default=None, description="补充的材料或说明")


class ApproveBody(BaseModel):
    items: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, description="授权的信息项（可少于申请的）；不填则按申请授权"
    )
    unmasked_items: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, description="不脱敏提供的信息项（须在授权信息项之内）"
    )
    conditions: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=50)
    valid_from: AwareMoment | None = Field(default=None, description="生效时间；不填自即时起")
    valid_until: AwareMoment | None = Field(default=None, description="到期时间；不填按申请的有效期")
    comment: Text | None = Field(default=None, description="审核意见")


class ReasonBody(BaseModel):
    reason: Text | None = Field(default=None, description="理由（必填）")


class EscalateBody(ReasonBody):
    written_application: Annotated[str, Field(max_length=20000)] | None = Field(
        default=None, description="书面申请正文（本辖区协调环节要求书面申请时必填，如襄阳市）"
    )


class TermsBody(BaseModel):
    reply_deadline_wd: int = Field(ge=1, le=60, description="本部门承诺的答复时限（工作日）")


def _required(value: str | None, field: str, zh: str, en: str) -> str:
    if value is None or not value.strip():
        raise ValidationFailed(
            "提交的内容未通过校验，请按 details 中列出的字段逐项修改。",
            "The input did not validate; fix the fields listed in details.",
            details={"fields": [field_error(field, zh, en, code="required")]},
        )
    return value.strip()


async def _detail(uow: UoW, principal: Principal, request_id: str, prof: Any) -> dict[str, Any]:
    row = await store.request(uow.conn, request_id)
    if row is None:
        raise NotFound("共享申请不存在。", "No such share request.")
    ensure_party(principal, row)
    result = show_request(row, prof)
    result["history"] = await store.history(uow.conn, request_id)
    return result


@router.get("/rules", summary="本辖区的共享申请规则：答复时限、协商协调途径、是否需政策依据、第三方转移")
async def rules(
    uow: UoW,
    _principal: Reader,
    platform: CurrentProfile,
    department_code: Annotated[
        str | None, Query(max_length=18, description="提供部门代码：该部门所属辖区的规则（托管辖区有其自己的规则）")
    ] = None,
) -> dict[str, Any]:
    prof = platform
    if department_code is not None:
        prof = await jurisdictions.department_profile(uow, platform, department_code)
    return {
        "department_code": department_code,
        "hosted": prof.name != platform.name,
        "profile": prof.name,
        "display_name": prof.display_name,
        "reply_deadline_wd": prof.reply_deadline_wd,
        "provider_sets_deadline": prof.provider_sets_deadline,
        "default_reply_deadline_wd": prof.default_reply_deadline_wd,
        "escalation": [s.model_dump() for s in prof.escalation],
        "conditional_needs_policy_basis": prof.conditional_needs_policy_basis,
        "third_party_transfer_allowed_with_approval": prof.third_party_transfer_allowed_with_approval,
        "log_retention_years": prof.log_retention_years,
        "purposes": PURPOSES,
        "states": domain.STATES,
    }


@router.get("/worklist", summary="待办：需要本部门（或平台管理机构）答复的申请，一个工作日内到期的在前")
async def worklist(
    uow: UoW, principal: Reviewer, cal: Calendar, prof: CurrentProfile, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    today = china_date(uow.clock)
    soon = (await cal.add_working_days(uow, today, 1, purpose="worklist")).due
    coordinator = principal.has("platform_admin")
    provider = principal.department if principal.has("dept_reviewer", "dept_admin") else None
    if provider is None and not coordinator:
        own_department(principal)
    items, total = await _worklist(uow, provider, coordinator, soon, prof, limit, offset)
    return page([show_request(r, prof) | {"due_soon": r["due_soon"]} for r in items], total, limit, offset)


async def _worklist(
    uow: UoW, provider: str | None, coordinator: bool, soon: Any, platform: Profile, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    # Which escalation levels the provider itself decides (negotiation) is each request's own profile's rule:
    # a hosted jurisdiction's steps need not be the platform's.
    params: dict[str, Any] = {"soon": soon, "limit": limit, "offset": offset, "platform": platform.name}
    negotiated = []
    for i, (name, prof) in enumerate({**PROFILES, platform.name: platform}.items()):
        params[f"pr{i}"] = name
        params[f"neg{i}"] = [lvl for lvl, s in enumerate(prof.escalation) if s.name == "negotiation"]
        negotiated.append(f"(coalesce(profile, :platform) = :pr{i} AND escalation_level = ANY(:neg{i}))")
    by_provider = "(" + " OR ".join(negotiated) + ")"
    clauses = []
    if provider is not None:
        clauses.append(f"(provider_code = :p AND (state = 'submitted' OR (state = 'escalated' AND {by_provider})))")
        params["p"] = provider
    if coordinator:
        clauses.append(f"(state = 'escalated' AND NOT {by_provider})")
    return await store.worklist_page(uow.conn, " OR ".join(clauses) or "false", params)


@router.get("/overdue-summary", summary="逾期未答复的共享申请，按提供部门统计（无故不受理共享申请）")
async def overdue_summary(
    uow: UoW, _principal: Annotated[Principal, Depends(require_roles("platform_admin", "auditor"))]
) -> dict[str, Any]:
    items = await store.overdue_by_provider(uow.conn)
    return page(items, len(items), len(items) or 1, 0)


@router.get("/provider-terms", summary="本部门承诺的答复时限（仅在由提供部门确定时限的辖区适用）")
async def get_terms(uow: UoW, principal: Reader, prof: CurrentProfile) -> dict[str, Any]:
    department = own_department(principal)
    days = await store.provider_terms(uow.conn, department)
    return {
        "department_code": department,
        "provider_sets_deadline": prof.provider_sets_deadline,
        "reply_deadline_wd": days,
        "effective_reply_deadline_wd": prof.reply_deadline(days),
    }


@router.put("/provider-terms", summary="设置本部门承诺的答复时限（部门信息资源管理员；海南省）")
async def set_terms(
    uow: UoW,
    body: TermsBody,
    principal: Annotated[Principal, Depends(require_roles("dept_admin"))],
    prof: CurrentProfile,
) -> dict[str, Any]:
    if not prof.provider_sets_deadline:
        raise Conflict(
            f"本辖区规定答复时限为 {prof.reply_deadline_wd} 个工作日，提供部门不能另行确定。",
            f"This jurisdiction fixes the reply deadline at {prof.reply_deadline_wd} working days.",
            code="deadline_fixed_by_profile",
        )
    department = own_department(principal)
    await store.set_provider_terms(
        uow.conn, department, body.reply_deadline_wd, actor=principal.subject, now=uow.clock.now()
    )
    return await get_terms(uow, principal, prof)


@router.post("", status_code=201, summary="提出共享申请（使用部门）")
async def submit(
    uow: UoW,
    request: Request,
    background: BackgroundTasks,
    body: SubmitBody,
    principal: Writer,
    cal: Calendar,
    prof: CurrentProfile,
) -> dict[str, Any]:
    consumer = own_department(principal)
    application = Application(
        consumer_code=consumer,
        items=[i.strip() for i in body.items],
        purposes=list(body.purposes),
        purpose_other=body.purpose_other,
        scope=body.scope,
        security_measures=body.security_measures,
        business_matter=body.business_matter,
        policy_basis=body.policy_basis,
        valid_until_wanted=body.valid_until,
        written_application=body.written_application,
    )
    code = body.resource_code.strip()
    elsewhere = await forwarding.mirrored_resource(uow, code)
    if elsewhere is not None:
        # Another platform's resource, mirrored in our catalog: the request goes to its owner (issue 16 item 4).
        request_id = await forwarding.forward(
            uow,
            principal,
            elsewhere,
            application,
            applicant={"platform": None, "department_code": consumer, "department_name": None},
            renews_grant_id=body.renews_grant_id,
        )
        courier = getattr(request.app.state, "federation_courier", None)
        if courier is not None:
            background.add_task(courier.wake.set)  # after the response, so after the commit it is to see
    else:
        request_id = await flows.submit(
            uow,
            principal,
            resource_code=code,
            application=application,
            renews_grant_id=body.renews_grant_id,
            calendar=cal,
            profile=prof,
        )
    return await _detail(uow, principal, request_id, prof)


@router.get("", summary="共享申请列表：本部门提出的和需要本部门答复的；平台管理员与审计员可见全部")
async def list_requests(
    uow: UoW,
    principal: Reader,
    prof: CurrentProfile,
    state: Annotated[list[domain.State] | None, Query(description="状态（可多选）")] = None,
    role: Annotated[Literal["consumer", "provider"] | None, Query(description="本部门作为使用方或提供方")] = None,
    department: Annotated[str | None, Query(max_length=18, description="部门代码（平台管理员、审计员）")] = None,
    resource_code: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> dict[str, Any]:
    scope = list_scope(principal)
    if scope is not None and department is not None and department != scope:
        raise Forbidden(
            "只能查看本部门的共享申请。", "You may list only your department's requests.", code="not_your_request"
        )
    items, total = await store.requests(
        uow.conn,
        department=scope or department,
        role=role,
        states=list(state) if state else None,
        resource_code=resource_code,
        limit=limit,
        offset=offset,
    )
    return page([show_request(r, prof) for r in items], total, limit, offset)


@router.get("/{request_id}", summary="共享申请详情与办理记录")
async def detail(uow: UoW, request_id: str, principal: Reader, prof: CurrentProfile) -> dict[str, Any]:
    return await _detail(uow, principal, request_id, prof)


@router.post("/{request_id}/request-info", summary="要求补充材料（提供部门审核员；计时暂停）")
async def request_info(
    uow: UoW, request_id: str, body: QuestionBody, principal: Reviewer, prof: CurrentProfile
) -> dict[str, Any]:
    question = _required(body.question, "question", "请说明需要补充的内容。", "Say what information is needed.")
    await flows.request_info(uow, principal, request_id, question=question, profile=prof)
    return await _detail(uow, principal, request_id, prof)


@router.post("/{request_id}/provide-info", summary="补充材料（使用部门；计时恢复，时限顺延）")
async def provide_info(
    uow: UoW, request_id: str, body: AnswerBody, principal: Writer, cal: Calendar, prof: CurrentProfile
) -> dict[str, Any]:
    answer = _required(body.answer, "answer", "请填写补充的内容。", "Give the information asked for.")
    await flows.provide_info(uow, principal, request_id, answer=answer, calendar=cal)
    return await _detail(uow, principal, request_id, prof)


@router.post("/{request_id}/approve", summary="同意（提供部门审核；协调阶段由平台管理机构决定），签发授权")
async def approve(
    uow: UoW, request_id: str, body: ApproveBody, principal: Reviewer, prof: CurrentProfile
) -> dict[str, Any]:
    await flows.approve(
        uow,
        principal,
        request_id,
        flows.ApprovalInput(
            items=body.items,
            unmasked_items=body.unmasked_items,
            conditions=body.conditions,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            comment=(body.comment or "").strip() or None,
        ),
        profile=prof,
    )
    return await _detail(uow, principal, request_id, prof)


@router.post("/{request_id}/reject", summary="不同意（须说明理由）")
async def reject(
    uow: UoW, request_id: str, body: ReasonBody, principal: Reviewer, prof: CurrentProfile
) -> dict[str, Any]:
    reason = _required(body.reason, "reason", "不同意共享须说明理由。", "A refusal must state its reason.")
    await flows.reject(uow, principal, request_id, reason=reason, profile=prof)
    return await _detail(uow, principal, request_id, prof)


@router.post("/{request_id}/escalate", summary="书面申请协商或协调（使用部门，申请未获同意后）")
async def escalate(
    uow: UoW, request_id: str, body: EscalateBody, principal: Writer, cal: Calendar, prof: CurrentProfile
) -> dict[str, Any]:
    reason = _required(body.reason, "reason", "请写明申请协调的事由。", "State why you ask for coordination.")
    await flows.escalate(
        uow,
        principal,
        request_id,
        reason=reason,
        written_application=body.written_application,
        calendar=cal,
        profile=prof,
    )
    return await _detail(uow, principal, request_id, prof)


@router.post("/{request_id}/withdraw", summary="撤回申请（使用部门，办结前）")
async def withdraw(uow: UoW, request_id: str, principal: Writer, prof: CurrentProfile) -> dict[str, Any]:
    await flows.withdraw(uow, principal, request_id)
    return await _detail(uow, principal, request_id, prof)


__all__ = ["reads_all", "router"]
