"""Resources and their workflow: drafts, submission, review, changes, withdrawal, versions and history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, Field

from govshare_common.auth import CurrentPrincipal, Principal
from govshare_common.bounds import BIGINT_MAX
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid
from govshare_common.service import UoW

from catalog_svc import domain, flows, store
from catalog_svc.domain import ResourceContent
from catalog_svc.routes.common import (
    PREFIX,
    DeptAdmin,
    Limit,
    Maintainer,
    Offset,
    PlatformAdmin,
    page,
    profile,
    sees_drafts,
)

router = APIRouter(prefix=f"{PREFIX}/resources", tags=["resources"])

CurrentProfile = Annotated[Profile, Depends(profile)]
ResourceId = Annotated[str, Path(description="信息资源 id")]


class DraftBody(ResourceContent):
    """A resource's elements, plus why this version is written (required when changing a published one)."""

    change_reason: str | None = Field(default=None, max_length=2000, description="变更原因")

    def content(self) -> ResourceContent:
        return ResourceContent.model_validate(self.model_dump(exclude={"change_reason"}))


class SubmitBody(BaseModel):
    change_reason: str | None = Field(default=None, max_length=2000, description="变更原因")


class ReturnBody(BaseModel):
    comment: str = Field(min_length=1, max_length=4000, description="退回意见")


class PublishBody(BaseModel):
    comment: str | None = Field(default=None, max_length=4000, description="审核意见")


class WithdrawBody(BaseModel):
    reason: str = Field(min_length=1, max_length=4000, description="撤销原因")


def _strip(value: str | None) -> str | None:
    return value.strip() or None if value else None


@router.post("", status_code=201, summary="新建信息资源草稿（部门信息资源管理员）")
async def create(uow: UoW, body: DraftBody, principal: DeptAdmin, prof: CurrentProfile) -> dict[str, Any]:
    resource_id = await flows.create_draft(
        uow, principal, body.content(), profile=prof, reason=_strip(body.change_reason)
    )
    return await _detail(uow, principal, resource_id)


@router.get("/{resource_id}", summary="信息资源详情（已发布版本；本部门另见草稿）")
async def detail(uow: UoW, resource_id: ResourceId, principal: CurrentPrincipal) -> dict[str, Any]:
    return await _detail(uow, principal, resource_id)


async def _detail(uow: UoW, principal: Principal, resource_id: str) -> dict[str, Any]:
    row = await _visible_row(uow, principal, resource_id)
    own = sees_drafts(principal, row["provider_code"])
    published = await store.published_snapshot(uow.conn, resource_id)
    pending = None
    if own and row["pending_version"] is not None:
        v = await store.version_row(uow.conn, resource_id, row["pending_version"])
        pending = {
            "version": v.version,
            "status": v.status,
            "content": v.content,
            "change_reason": v.change_reason,
            "review_comment": v.review_comment,
            "changes": v.diff,
            "updated_by": v.updated_by,
            "updated_at": v.updated_at,
            "submitted_at": v.submitted_at,
        }
    return {
        "id": row["id"],
        "code": row["code"],
        "status": row["status"],
        "name": row["name"],
        "provider_code": row["provider_code"],
        "provider_name": row["provider_name"],
        "published_version": row["published_version"],
        "published": published,
        "pending": pending,
        "withdrawn_reason": row["withdrawn_reason"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def _visible_row(uow: UoW, principal: Principal, resource_id: str) -> dict[str, Any]:
    row = await store.resource_row(uow.conn, resource_id) if is_uuid(resource_id) else None
    if (
        row is None
        or row["status"] == "discarded"
        or (row["status"] == "draft" and not sees_drafts(principal, row["provider_code"]))
    ):
        raise domain.Missing("信息资源不存在。", "No such resource.", resource_id=resource_id)
    return row


@router.put("/{resource_id}/draft", summary="保存草稿；已发布资源由此开始新版本（原版本继续有效）")
async def save_draft(
    uow: UoW, resource_id: ResourceId, body: DraftBody, principal: DeptAdmin, prof: CurrentProfile
) -> dict[str, Any]:
    await flows.save_draft(uow, principal, resource_id, body.content(), profile=prof, reason=_strip(body.change_reason))
    return await _detail(uow, principal, resource_id)


@router.delete("/{resource_id}/draft", summary="删除草稿（从未发布的资源一并删除）")
async def discard_draft(uow: UoW, resource_id: ResourceId, principal: DeptAdmin) -> dict[str, Any]:
    await flows.discard_draft(uow, principal, resource_id)
    state = await store.resource_state(uow.conn, resource_id)
    assert state is not None
    return {"id": resource_id, "status": state.status}


@router.post("/{resource_id}/submit", summary="提交审核（部门信息资源管理员）")
async def submit(
    uow: UoW,
    resource_id: ResourceId,
    principal: DeptAdmin,
    prof: CurrentProfile,
    body: Annotated[SubmitBody | None, Body()] = None,
) -> dict[str, Any]:
    await flows.submit(uow, principal, resource_id, profile=prof, reason=_strip(body.change_reason) if body else None)
    return await _detail(uow, principal, resource_id)


@router.post("/{resource_id}/return", summary="退回修改（平台管理员）")
async def return_for_changes(
    uow: UoW, resource_id: ResourceId, body: ReturnBody, principal: PlatformAdmin
) -> dict[str, Any]:
    comment = domain.required_text(body.comment, "comment", "请填写退回意见。", "Give the reason for returning it.")
    await flows.return_for_changes(uow, principal, resource_id, comment=comment)
    return await _detail(uow, principal, resource_id)


@router.post("/{resource_id}/publish", summary="审核通过并发布（平台管理员）")
async def publish(
    uow: UoW,
    resource_id: ResourceId,
    principal: PlatformAdmin,
    prof: CurrentProfile,
    body: Annotated[PublishBody | None, Body()] = None,
) -> dict[str, Any]:
    await flows.publish(uow, principal, resource_id, profile=prof, comment=_strip(body.comment) if body else None)
    return await _detail(uow, principal, resource_id)


@router.post("/{resource_id}/withdraw", summary="撤销已发布的信息资源（本部门管理员或平台管理员）")
async def withdraw(uow: UoW, resource_id: ResourceId, body: WithdrawBody, principal: Maintainer) -> dict[str, Any]:
    reason = domain.required_text(body.reason, "reason", "请填写撤销原因。", "Give the reason for withdrawing it.")
    await flows.withdraw(uow, principal, resource_id, reason=reason)
    return await _detail(uow, principal, resource_id)


@router.get("/{resource_id}/versions", summary="版本记录：每个版本的编制人、时间、原因和字段级差异")
async def versions(
    uow: UoW, resource_id: ResourceId, principal: CurrentPrincipal, limit: Limit = 20, offset: Offset = 0
) -> dict[str, Any]:
    row = await _visible_row(uow, principal, resource_id)
    items, total = await store.versions(
        uow.conn,
        resource_id,
        include_pending=sees_drafts(principal, row["provider_code"]),
        limit=limit,
        offset=offset,
    )
    return page(items, total, limit, offset)


@router.get("/{resource_id}/versions/{version}", summary="某一版本的全部内容")
async def version(
    uow: UoW, resource_id: ResourceId, version: Annotated[int, Path(ge=1, le=BIGINT_MAX)], principal: CurrentPrincipal
) -> dict[str, Any]:
    row = await _visible_row(uow, principal, resource_id)
    v = await store.version_row(uow.conn, resource_id, version)
    live = ("published", "superseded", "withdrawn")
    if v is None or (v.status not in live and not sees_drafts(principal, row["provider_code"])):
        raise domain.Missing("该版本不存在。", "No such version.")
    return {"id": resource_id, "code": row["code"], **dict(v._mapping)}


@router.get("/{resource_id}/history", summary="操作记录（本部门与平台管理员）")
async def history(
    uow: UoW, resource_id: ResourceId, principal: CurrentPrincipal, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    row = await _visible_row(uow, principal, resource_id)
    if not sees_drafts(principal, row["provider_code"]):
        raise domain.NotOwner("只有本部门和平台管理员可查看操作记录。", "Only the department and the platform office.")
    items, total = await store.history_entries(uow.conn, resource_id, limit=limit, offset=offset)
    return page(items, total, limit, offset)
