"""Cross-level bulk export (issue 16 item 5): a department's bulk download at home of a resource another
platform owns, streamed through page by page; and a peer platform's signed calls for its departments' exports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from govshare_common.bounds import BIGINT_MAX
from govshare_common.peer_guard import VerifiedCall
from govshare_common.service import UoW

from exchange_svc import cross_level_exports as exports
from exchange_svc.routes.common import PREFIX, DataReader, Purpose, Sealing, Staff, hash_key
from exchange_svc.routes.exports import MEDIA
from exchange_svc.routes.peer_answers import answer_signed, body_of

router = APIRouter(prefix=f"{PREFIX}/federation", tags=["cross-level exports"])

RowOffset = Annotated[int, Query(ge=0, le=BIGINT_MAX, description="已收到的数据行数")]


class CrossLevelExportBody(BaseModel):
    resource_code: str = Field(min_length=1, max_length=80, description="本平台目录中的跨平台资源代码（<平台>:<代码>）")
    format: Literal["csv", "jsonl"] = Field(default="csv", description="csv 或 jsonl")


def _client(request: Request) -> Any:
    return getattr(request.app.state, "peer_client", None)


@router.post("/exports", status_code=201, summary="跨平台批量下载：发起（按信息资源所属平台的授权）")
async def start(
    request: Request, uow: UoW, body: CrossLevelExportBody, principal: DataReader, purpose: Purpose = None
) -> dict[str, Any]:
    return await exports.create(
        uow, principal, _client(request), code=body.resource_code, purpose=purpose, fmt=body.format
    )


@router.get("/exports/{export_id}", summary="跨平台批量下载的进度")
async def progress(uow: UoW, export_id: str, principal: Staff) -> dict[str, Any]:
    return exports.view(await exports.owned(uow, principal, export_id))


@router.get("/exports/{export_id}/download", summary="跨平台批量下载（offset=已收到的行数，可断点续传）")
async def download(
    request: Request, uow: UoW, export_id: str, principal: DataReader, offset: RowOffset = 0
) -> StreamingResponse:
    client = _client(request)
    export, peer, first = await exports.prepare_download(uow, principal, client, export_id=export_id, offset=offset)
    body = exports.stream(
        request.app.state.db,
        principal,
        client,
        export=export,
        peer=peer,
        first=first,
        hash_key=hash_key(request),
    )
    return StreamingResponse(
        body,
        media_type=MEDIA[export.format],
        headers={
            "X-Govshare-Export-Fingerprint": export.fingerprint,
            "X-Govshare-Export-Rows": str(export.total_rows),
            "X-Govshare-Origin-Platform": export.origin_platform,
        },
    )


class PeerExportBody(BaseModel):
    resource: str = Field(min_length=1, max_length=64)
    consumer: str = Field(min_length=1, max_length=18)
    principal: str = Field(default="", max_length=200)
    purpose: str | None = Field(default=None, max_length=64)
    format: Literal["csv", "jsonl"] = "csv"


@router.post("/peer-exports", summary="对端平台为其部门发起本平台信息资源的批量下载（签名调用）")
async def peer_start(request: Request, uow: UoW) -> Response:
    async def work(call: VerifiedCall) -> dict[str, Any]:
        body = body_of(call, PeerExportBody)
        return await exports.answer_create(
            uow,
            call.peer,
            idempotency_key=call.idempotency_key,
            resource=body.resource,
            consumer=body.consumer,
            asker=body.principal,
            purpose=body.purpose,
            fmt=body.format,
            hash_key=hash_key(request),
        )

    return await answer_signed(request, uow, work)


@router.get("/peer-exports/{export_id}/rows", summary="对端平台读取其部门导出的一页（签名调用，每次核验授权）")
async def peer_rows(
    request: Request,
    uow: UoW,
    sealer: Sealing,
    export_id: str,
    consumer: Annotated[str, Query(min_length=1, max_length=18)],
    principal: Annotated[str, Query(max_length=200)] = "",
    offset: RowOffset = 0,
) -> Response:
    async def work(call: VerifiedCall) -> dict[str, Any]:
        return await exports.answer_page(
            uow,
            call.peer,
            export_id=export_id,
            consumer=consumer,
            asker=principal,
            offset=offset,
            hash_key=hash_key(request),
            sealer=sealer,
        )

    return await answer_signed(request, uow, work)
