"""The catalog's views: the jurisdiction catalog, search, a department's own catalog, the review queue, the
negative list, the open catalog (anonymous) and the code lists."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from govshare_common.auth import CurrentPrincipal
from govshare_common.record_ids import is_uuid
from govshare_common.service import UoW

from catalog_svc import domain, search, store
from catalog_svc.routes.common import (
    PREFIX,
    CatalogFilters,
    Limit,
    Offset,
    PlatformAdmin,
    page,
    sees_drafts,
)

router = APIRouter(prefix=PREFIX, tags=["catalog views"])

Sort = Literal["relevance", "name", "-name", "publish_date", "-publish_date", "code", "-code"]
TextQuery = Annotated[str | None, Query(max_length=200, description="检索词（中文分词全文检索）")]
FACET_LABELS: dict[str, dict[Any, str]] = {
    "resource_class": domain.RESOURCE_CLASSES,
    "share_type": domain.SHARE_TYPES,
    "share_method_type": domain.SHARE_METHOD_TYPES,
    "update_cycle": domain.UPDATE_CYCLES,
    "format_category": domain.FORMAT_CATEGORIES,
    "open_to_public": {True: "是", False: "否"},
}
NEGATIVE_FIELDS = (*search.LISTED, "share_conditions", "legal_basis", "usage_requirements")
OPEN_FIELDS = (*search.LISTED, "open_conditions")


async def _search(
    request: Request,
    *,
    q: str | None,
    filters: search.Filters,
    sort: str,
    limit: int,
    offset: int,
    facets: bool,
    fields: tuple[str, ...] = search.LISTED,
) -> dict[str, Any]:
    query = await search.parse_query(q)
    result = await search.search(
        request.app.state.db.engine,
        query=query,
        filters=filters,
        sort=sort,
        limit=limit,
        offset=offset,
        facets=facets,
        fields=fields,
    )
    for name, entries in (result.get("facets") or {}).items():
        labels = FACET_LABELS.get(name)
        if labels is not None:
            for entry in entries:
                entry["label"] = labels.get(entry["value"], str(entry["value"]))
    return result


@router.get("/resources", summary="本级政务信息资源目录（全部已发布资源）")
async def jurisdiction_catalog(
    request: Request,
    _principal: CurrentPrincipal,
    filters: CatalogFilters,
    q: TextQuery = None,
    sort: Sort = "-publish_date",
    limit: Limit = 20,
    offset: Offset = 0,
) -> dict[str, Any]:
    return await _search(request, q=q, filters=filters, sort=sort, limit=limit, offset=offset, facets=False)


@router.get("/search", summary="全文检索（名称、摘要、信息项），含分面统计")
async def full_text_search(
    request: Request,
    _principal: CurrentPrincipal,
    filters: CatalogFilters,
    q: TextQuery = None,
    sort: Sort = "relevance",
    limit: Limit = 20,
    offset: Offset = 0,
) -> dict[str, Any]:
    return await _search(request, q=q, filters=filters, sort=sort, limit=limit, offset=offset, facets=True)


@router.get("/negative-list", summary="负面清单：有条件共享和不予共享的信息资源，含共享条件与依据")
async def negative_list(
    request: Request,
    _principal: CurrentPrincipal,
    filters: CatalogFilters,
    q: TextQuery = None,
    sort: Sort = "code",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    if filters.share_type == "unconditional":
        return page([], 0, limit, offset)
    filters.share_types = ("conditional", "not_shared")
    return await _search(
        request,
        q=q,
        filters=filters,
        sort=sort,
        limit=limit,
        offset=offset,
        facets=False,
        fields=NEGATIVE_FIELDS,
    )


@router.get("/open", summary="开放目录：向社会开放的信息资源（无需登录）")
async def open_catalog(
    request: Request,
    filters: CatalogFilters,
    q: TextQuery = None,
    sort: Sort = "-publish_date",
    limit: Limit = 20,
    offset: Offset = 0,
) -> dict[str, Any]:
    filters.open_to_public = True
    return await _search(
        request, q=q, filters=filters, sort=sort, limit=limit, offset=offset, facets=True, fields=OPEN_FIELDS
    )


@router.get("/open/{resource_id}", summary="开放目录中的一项（无需登录；只列可开放的信息项）")
async def open_resource(uow: UoW, resource_id: Annotated[str, Path()]) -> dict[str, Any]:
    snapshot = await store.published_snapshot(uow.conn, resource_id) if is_uuid(resource_id) else None
    if snapshot is None or not snapshot["open_to_public"]:
        raise domain.Missing("开放目录中没有该信息资源。", "No such resource in the open catalog.")
    # Internal items stay inside government; sensitive and personal ones are opened only masked.
    items = [i for i in snapshot["data_items"] if i["sensitivity"] != "internal"]
    hidden = {
        "share_conditions",
        "legal_basis",
        "usage_requirements",
        "related_codes",
        "classified",
        "secrecy_reviewed",
    }
    return {**{k: v for k, v in snapshot.items() if k not in hidden}, "data_items": items}


@router.get("/departments/{department_code}/resources", summary="部门目录：本部门另见草稿和待办的更新义务")
async def department_catalog(
    uow: UoW,
    department_code: str,
    principal: CurrentPrincipal,
    status: Annotated[
        list[Literal["draft", "published", "withdrawn"]] | None, Query(description="资源状态（可多选）")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    own = sees_drafts(principal, department_code)
    statuses: list[str] | None = list(status) if status else None
    if not own:
        statuses = [s for s in (statuses or ["published"]) if s == "published"]
    items, total = await store.department_resources(
        uow.conn, department=department_code, statuses=statuses, limit=limit, offset=offset
    )
    if not own:
        for item in items:
            item.pop("pending_version")
            item.pop("pending_status")
            item.pop("pending_review_comment")
        return page(items, total, limit, offset)
    outstanding, _ = await store.obligations(
        uow.conn, department=department_code, statuses=["overdue", "open"], limit=200, offset=0
    )
    return page(items, total, limit, offset, obligations=outstanding)


@router.get("/review-queue", summary="待审核的信息资源版本（平台管理员）")
async def review_queue(uow: UoW, _principal: PlatformAdmin, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    items, total = await store.review_queue(uow.conn, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.get("/reference", summary="代码表：编制指南的分类、格式、数据类型、共享与开放属性（无需登录）")
async def reference(request: Request) -> dict[str, Any]:
    prof = request.app.state.profile
    return {
        "vocabulary": domain.vocabulary(),
        "rules": {
            "catalog_update_working_days": prof.catalog_update_wd,
            "conditional_needs_policy_basis": prof.conditional_needs_policy_basis,
            "secrecy_review_required": prof.first_access_filing_required,
            "open_by_default": prof.open_by_default,
        },
    }
