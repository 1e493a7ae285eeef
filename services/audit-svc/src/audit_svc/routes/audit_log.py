"""/api/v1/audit: the log itself (auditors only) — entries, verification, checkpoints and the key that signs
them, retention, and the traces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from govshare_common.bounds import BIGINT_MAX, MAX_OFFSET, Moment
from govshare_common.errors import NotFound, ValidationFailed, field_error
from govshare_common.identifiers import hash_identifier
from govshare_common.service import UoW

from audit_svc import events, ledger, trail
from audit_svc.routes.common import AUDIT, Auditor, Limit, Offset, page
from audit_svc.signing import public_jwk, public_keys

router = APIRouter(prefix=AUDIT, tags=["audit"])


@router.get("/summary", summary="审计日志概况：链头位置与哈希、各来源已记录的序号")
async def summary(uow: UoW, _: Auditor) -> dict[str, Any]:
    return await trail.summary(uow.conn)


@router.get("/entries", summary="审计日志（按条件筛选，新在前）")
async def list_entries(
    uow: UoW,
    _: Auditor,
    type: Annotated[list[str] | None, Query(description="事件类型")] = None,
    source: Annotated[str | None, Query(description="来源服务")] = None,
    department: Annotated[str | None, Query(description="行为部门代码")] = None,
    provider: Annotated[str | None, Query(description="提供部门代码")] = None,
    resource: Annotated[str | None, Query(description="信息资源代码")] = None,
    grant_id: Annotated[str | None, Query(description="授权编号")] = None,
    actor: Annotated[str | None, Query(description="操作主体")] = None,
    since: Annotated[Moment | None, Query(description="事件时间起（含）")] = None,
    until: Annotated[Moment | None, Query(description="事件时间止（不含）")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    flt = trail.EntryFilter(
        types=type,
        source=source,
        department=department,
        provider=provider,
        resource=resource,
        grant_id=grant_id,
        actor=actor,
        since=since,
        until=until,
    )
    items, total = await trail.entries(uow.conn, flt, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.get("/entries/{position}", summary="一条审计日志")
async def get_entry(uow: UoW, position: Annotated[int, Path(ge=0, le=BIGINT_MAX)], _: Auditor) -> dict[str, Any]:
    found = await trail.one(uow.conn, position)
    if found is None:
        raise NotFound("该位置没有审计日志（可能已超过保存期限被清理）。", "No entry at this position.")
    return found


@router.get("/verify", summary="校验审计日志：报告第一条被篡改或删除的记录")
async def verify(
    request: Request,
    _: Auditor,
    start: Annotated[int | None, Query(alias="from", ge=1, le=BIGINT_MAX, description="起始位置")] = None,
    end: Annotated[int | None, Query(alias="to", ge=1, le=BIGINT_MAX, description="结束位置")] = None,
) -> dict[str, Any]:
    if start is not None and end is not None and end < start:
        raise ValidationFailed(
            "结束位置不能小于起始位置。",
            "'to' must not be before 'from'.",
            details={"fields": [field_error("to", "结束位置不能小于起始位置。", "'to' is before 'from'.")]},
        )
    result = await ledger.verify(request.app.state.db.engine, first=start, last=end)
    return result.as_dict()


@router.get("/checkpoints", summary="已签名的检查点（新在前）")
async def checkpoints(uow: UoW, _: Auditor, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    items, total = await ledger.list_checkpoints(uow.conn, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.post("/checkpoints", status_code=201, summary="立即对当前链头签名")
async def sign_now(request: Request, uow: UoW, _: Auditor) -> dict[str, Any]:
    signed = await ledger.sign_checkpoint(uow.conn, request.app.state.checkpoint_keys, now=uow.clock.now())
    if signed is None:
        raise ValidationFailed("审计日志为空，无可签名的内容。", "The log is empty; nothing to sign.", code="log_empty")
    if signed.get("new"):
        events.emit_checkpoint(uow, signed)
    return {k: v for k, v in signed.items() if k != "new"}


@router.get("/keys", summary="检查点签名公钥（JWK，Ed25519）")
async def keys(uow: UoW, _: Auditor) -> dict[str, Any]:
    found = await public_keys(uow.conn)
    return {
        "keys": [public_jwk(kid, raw) for kid, raw in sorted(found.items())],
        "message_format": "govshare-audit-checkpoint:v1|<position>|<hash hex>|<recorded_at ISO 8601>",
    }


@router.get("/retention", summary="按月分区与保存期限")
async def retention(request: Request, uow: UoW, _: Auditor) -> dict[str, Any]:
    kept = await ledger.partitions(uow.conn)
    dropped = [
        dict(r._mapping)
        for r in await uow.execute(
            text(
                "SELECT partition, first_position, last_position, entries, checkpoint_id, retention_years, dropped_at "
                "FROM audit_partition_drop ORDER BY range_start"
            )
        )
    ]
    return {
        "retention_years": request.app.state.profile.log_retention_years,
        "partitions": [{k: v for k, v in p.items() if k not in ("range_start", "range_end")} for p in kept],
        "dropped": dropped,
    }


# --- traces -------------------------------------------------------------------------------------------------


class SubjectTrace(BaseModel):
    identifier: str = Field(min_length=1, max_length=64, description="公民身份号码或统一社会信用代码")
    since: Moment | None = None
    until: Moment | None = None
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


@router.post("/trace/subject", summary="追溯：谁访问了某人或某单位的数据（号码在请求体中，不进地址栏）")
async def trace_subject(request: Request, uow: UoW, body: SubjectTrace, _: Auditor) -> dict[str, Any]:
    hashed = hash_identifier(body.identifier, key=request.app.state.settings.hash_key())
    flt = trail.EntryFilter(since=body.since, until=body.until)
    items, total = await trail.entries(uow.conn, flt, limit=body.limit, offset=body.offset, subject_hash=hashed)
    return page(items, total, body.limit, body.offset, subject_hash=hashed)


@router.get("/trace/departments/{code}", summary="追溯：某部门访问了哪些数据")
async def trace_department(
    uow: UoW,
    code: str,
    _: Auditor,
    access_only: Annotated[bool, Query(description="只看数据访问")] = True,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    flt = trail.EntryFilter(
        department=code, types=list(trail.ACCESS_TYPES) if access_only else None, since=since, until=until
    )
    items, total = await trail.entries(uow.conn, flt, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.get("/trace/resources/{code:path}", summary="追溯：某信息资源的全部记录（代码需 URL 编码）")
async def trace_resource(
    uow: UoW,
    code: str,
    _: Auditor,
    type: Annotated[list[str] | None, Query(description="事件类型")] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    flt = trail.EntryFilter(resource=code, types=type, since=since, until=until)
    items, total = await trail.entries(uow.conn, flt, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.get("/trace/grants/{grant_id}", summary="追溯：某授权从签发到每次使用")
async def trace_grant(
    uow: UoW,
    grant_id: str,
    _: Auditor,
    type: Annotated[list[str] | None, Query(description="事件类型")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    flt = trail.EntryFilter(grant_id=grant_id, types=type)
    items, total = await trail.entries(uow.conn, flt, limit=limit, offset=offset)
    return page(items, total, limit, offset)
