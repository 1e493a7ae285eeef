"""Bulk download: start an export, stream it (resumable), watch its progress, trace a leaked file."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from govshare_common.bounds import BIGINT_MAX
from govshare_common.service import UoW

from exchange_svc import exports
from exchange_svc.routes.common import (
    PREFIX,
    RESOURCE,
    DataReader,
    PlatformAdmin,
    Purpose,
    Sealing,
    Staff,
    hash_key,
)

router = APIRouter(tags=["exports"])

MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class ExportBody(BaseModel):
    format: Literal["csv", "jsonl"] = Field(default="csv", description="csv 或 jsonl")


@router.post(f"{RESOURCE}/exports", status_code=201, summary="发起批量下载（授权范围内的全部记录）")
async def start(
    request: Request,
    uow: UoW,
    code: str,
    principal: DataReader,
    purpose: Purpose = None,
    body: ExportBody | None = None,
) -> dict[str, Any]:
    fmt = body.format if body else "csv"
    return await exports.create(uow, principal, code=code, purpose=purpose, fmt=fmt, hash_key=hash_key(request))


@router.get(f"{RESOURCE}/exports/{{export_id}}/download", summary="下载（offset=已收到的行数，可断点续传）")
async def download(
    request: Request,
    uow: UoW,
    code: str,
    export_id: str,
    principal: DataReader,
    sealer: Sealing,
    purpose: Purpose = None,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX, description="已收到的数据行数")] = 0,
) -> StreamingResponse:
    resource, decision, export = await exports.prepare_download(
        uow, principal, code=code, export_id=export_id, purpose=purpose, offset=offset
    )
    body = exports.stream(
        request.app.state.db,
        principal,
        resource=resource,
        decision=decision,
        export=export,
        offset=offset,
        hash_key=hash_key(request),
        sealer=sealer,
    )
    return StreamingResponse(
        body,
        media_type=MEDIA[export.format],
        headers={"X-Govshare-Export-Fingerprint": export.fingerprint, "X-Govshare-Export-Rows": str(export.total_rows)},
    )


@router.get(f"{PREFIX}/exports/{{export_id}}", summary="导出进度")
async def progress(uow: UoW, export_id: str, principal: Staff) -> dict[str, Any]:
    return exports.view(await exports.owned(uow, principal, export_id))


@router.post(
    f"{PREFIX}/exports/trace", summary="追溯：给出文件内容（或其片段、水印），查出来自哪一次导出（平台管理机构）"
)
async def trace(request: Request, uow: UoW, principal: PlatformAdmin) -> dict[str, Any]:
    return await exports.trace(uow, await request.body())
