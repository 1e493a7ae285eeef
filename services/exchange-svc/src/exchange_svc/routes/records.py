"""Hosted records: batches in, online query out, record history, the record key, and the hosted resources."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from govshare_common.errors import Forbidden, ValidationFailed, field_error
from govshare_common.service import UoW, database_dsn

from exchange_svc import ingest, queries
from exchange_svc.domain.freshness import due_at
from exchange_svc.events import KEY_DECLARED, KeyDeclared
from exchange_svc.guard import require_resource
from exchange_svc.parsing import FORMATS
from exchange_svc.routes.common import (
    PREFIX,
    RESOURCE,
    DataReader,
    Limit,
    Offset,
    Purpose,
    Reader,
    Sealing,
    Sender,
    Staff,
    hash_key,
    page,
)

router = APIRouter(tags=["records"])

BATCH_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")


def _batch_id(query_value: str | None, header_value: str | None) -> str:
    value = (query_value or header_value or "").strip()
    if not BATCH_ID.match(value):
        raise ValidationFailed(
            "请提供批次号（batch_id 参数或 X-Govshare-Batch-Id 头，1–100 位字母、数字或 ._:-）。",
            "Give a batch id (batch_id or X-Govshare-Batch-Id: 1-100 letters, digits or ._:-).",
            details={"fields": [field_error("batch_id", "批次号格式不正确", "malformed batch id")]},
        )
    return value


def _format(fmt: str | None, content_type: str | None) -> str:
    if fmt is None:
        fmt = "csv" if "csv" in (content_type or "") else "jsonl"
    if fmt not in FORMATS:
        raise ValidationFailed(
            "格式只能是 jsonl 或 csv。",
            "format must be jsonl or csv.",
            details={"fields": [field_error("format", "不支持的格式", "unsupported format")]},
        )
    return fmt


@router.post(f"{RESOURCE}/batches", summary="报送数据批次（JSON Lines 或 CSV，分块流式校验，整批入库或整批退回）")
async def post_batch(
    request: Request,
    code: str,
    principal: Sender,
    sealer: Sealing,
    batch_id: Annotated[str | None, Query(description="批次号：重复报送同一批次号不会重复入库")] = None,
    format: Annotated[str | None, Query(description="jsonl 或 csv（缺省按 Content-Type）")] = None,
    confirm_uscc_warnings: Annotated[bool, Query(description="确认统一社会信用代码校验码不符的值无误")] = False,
    x_govshare_batch_id: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    settings = request.app.state.settings
    return await ingest.ingest(
        request.app.state.db,
        principal,
        ingest.BatchRequest(
            code=code,
            batch_id=_batch_id(batch_id, x_govshare_batch_id),
            fmt=_format(format, request.headers.get("content-type")),
            confirm_uscc_warnings=confirm_uscc_warnings,
            bytes_total=_declared_length(request.headers.get("content-length")),
            chunk_rows=settings.ingest_chunk_rows,
        ),
        request.stream(),
        dsn=database_dsn(settings),
        hash_key=hash_key(request),
        sealer=sealer,
    )


def _declared_length(value: str | None) -> int | None:
    """The body's declared length, for the time left while rows are still counted (absent when chunked)."""
    return int(value) if value and value.isdigit() else None


@router.get(f"{RESOURCE}/batches", summary="本资源的报送批次（提供部门）")
async def list_batches(uow: UoW, code: str, principal: Staff, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    resource = await require_resource(uow, code)
    if principal.department != resource.provider_code and not principal.has("platform_admin"):
        raise Forbidden("只有提供部门可查看报送批次。", "Only the provider sees its batches.", code="not_own_resource")
    total = (await uow.execute(text("SELECT count(*) FROM batch WHERE resource_code = :c"), {"c": code})).scalar_one()
    rows = await uow.execute(
        text(
            "SELECT batch_id, provider_code, principal, format, rows, inserted, updated, deleted, unchanged, conflicts, "
            "received_at FROM batch WHERE resource_code = :c ORDER BY received_at DESC, batch_id "
            "LIMIT :limit OFFSET :offset"
        ),
        {"c": code, "limit": limit, "offset": offset},
    )
    return page([dict(r._mapping) for r in rows], total, limit, offset)


@router.get(f"{RESOURCE}/records", summary="联机查询：按身份标识或记录主键查询一个或多个对象")
async def get_records(
    request: Request,
    uow: UoW,
    code: str,
    principal: DataReader,
    sealer: Sealing,
    purpose: Purpose = None,
    subject: Annotated[list[str] | None, Query(description="身份标识（公民身份号码/统一社会信用代码），可多个")] = None,
    key: Annotated[list[str] | None, Query(description="记录主键，可多个")] = None,
) -> dict[str, Any]:
    return await queries.query(
        uow,
        principal,
        code=code,
        purpose=purpose,
        subjects=subject or [],
        keys=key or [],
        hash_key=hash_key(request),
        sealer=sealer,
    )


@router.get(f"{RESOURCE}/history", summary="一条记录的变更历史（提供部门、平台管理机构）")
async def record_history(
    uow: UoW,
    code: str,
    principal: Staff,
    sealer: Sealing,
    key: Annotated[str, Query(min_length=1, description="记录主键")],
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    return await queries.history(uow, principal, code=code, key=key, limit=limit, offset=offset, sealer=sealer)


class KeyBody(BaseModel):
    items: list[str] = Field(min_length=1, max_length=10, description="组成记录主键的信息项")


@router.put(f"{RESOURCE}/key", summary="声明记录主键（提供部门管理员，尚无记录时）")
async def declare_key(uow: UoW, code: str, body: KeyBody, principal: Staff) -> dict[str, Any]:
    resource = await require_resource(uow, code)
    if principal.department != resource.provider_code or not principal.has("dept_admin"):
        raise Forbidden("只有提供部门管理员可声明记录主键。", "Only the provider's admin declares the key.")
    unknown = [i for i in body.items if resource.item(i) is None]
    if unknown or len(set(body.items)) != len(body.items):
        raise ValidationFailed(
            "主键信息项须为目录中的信息项且不重复。",
            "Key items must be distinct catalog data items.",
            details={"fields": [field_error("items", f"未知信息项 {', '.join(unknown)}", "unknown items")]},
        )
    await ingest.lock_resource(uow, code)
    held = (await uow.execute(text("SELECT count(*) FROM record WHERE resource_code = :c"), {"c": code})).scalar_one()
    if held:
        raise ValidationFailed(
            "已有记录的资源不能更换主键。", "The key cannot change once records are held.", code="records_exist"
        )
    await uow.execute(text("UPDATE resource SET declared_key = :k WHERE code = :c"), {"k": body.items, "c": code})
    uow.emit(KEY_DECLARED, code, KeyDeclared(resource_code=code, key_items=body.items, actor=principal.subject))
    return {"resource_code": code, "key_items": body.items}


@router.get(f"{PREFIX}/resources", summary="平台托管的信息资源及其更新情况")
async def hosted_resources(
    uow: UoW,
    principal: Reader,
    provider_code: Annotated[str | None, Query()] = None,
    stale: Annotated[bool | None, Query(description="只看逾期未更新的")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    where = "status = 'published'"
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if provider_code:
        where += " AND provider_code = :p"
        params["p"] = provider_code
    if stale is not None:
        where += " AND stale_due_at IS NOT NULL" if stale else " AND stale_due_at IS NULL"
    total = (await uow.execute(text(f"SELECT count(*) FROM resource WHERE {where}"), params)).scalar_one()
    rows = await uow.execute(
        text(
            "SELECT r.code, r.name, r.provider_code, r.resource_class, r.share_type, r.update_cycle, r.published_at, "
            "r.last_ingest_at, r.stale_due_at, (SELECT count(*) FROM record WHERE resource_code = r.code) AS records "
            f"FROM resource r WHERE {where} ORDER BY code LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    items = []
    for r in rows:
        items.append(
            {
                **dict(r._mapping),
                "next_update_due": due_at(r.update_cycle, published_at=r.published_at, last_ingest_at=r.last_ingest_at),
                "stale": r.stale_due_at is not None,
            }
        )
    return page(items, total, limit, offset)
