"""Files of file-type resources: the provider uploads, a consumer with access downloads."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from govshare_common.service import UoW

from exchange_svc import files
from exchange_svc.routes.common import RESOURCE, DataReader, Limit, Offset, Purpose, Sender, hash_key

router = APIRouter(tags=["files"])


@router.post(f"{RESOURCE}/files", status_code=201, summary="上传文件（提供部门，文件类资源）")
async def upload(
    request: Request,
    uow: UoW,
    code: str,
    principal: Sender,
    name: Annotated[str, Query(min_length=1, max_length=255, description="文件名")],
) -> dict[str, Any]:
    return await files.upload(
        uow,
        principal,
        code=code,
        name=name,
        content_type=request.headers.get("content-type") or "application/octet-stream",
        chunks=request.stream(),
    )


@router.get(f"{RESOURCE}/files", summary="资源的文件")
async def listing(
    uow: UoW, code: str, principal: DataReader, purpose: Purpose = None, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    return await files.listing(uow, principal, code=code, purpose=purpose, limit=limit, offset=offset)


@router.get(f"{RESOURCE}/files/{{file_id}}", summary="下载文件")
async def download(
    request: Request, uow: UoW, code: str, file_id: str, principal: DataReader, purpose: Purpose = None
) -> StreamingResponse:
    row = await files.prepare_download(
        uow, principal, code=code, file_id=file_id, purpose=purpose, hash_key=hash_key(request)
    )
    return StreamingResponse(
        files.content(request.app.state.db, str(row.id)),
        media_type=row.content_type,
        headers={
            "Content-Length": str(row.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.name)}",
            "X-Content-SHA256": row.sha256,
        },
    )
