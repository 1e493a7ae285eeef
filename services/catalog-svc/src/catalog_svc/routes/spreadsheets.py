"""Catalog spreadsheets: a department uploads its catalog as .xlsx; anyone signed in exports one."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, UploadFile
from fastapi.responses import Response

from govshare_common.auth import CurrentPrincipal
from govshare_common.profiles import Profile
from govshare_common.service import UoW

from catalog_svc import domain, flows, spreadsheet, store
from catalog_svc.routes.common import PREFIX, DeptAdmin, profile, sees_drafts

router = APIRouter(prefix=PREFIX, tags=["spreadsheets"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD_BYTES = 50 * 2**20
EXPORT_LIMIT = 20_000


@router.post("/import", status_code=201, summary="上传本部门目录表格（.xlsx，每行一个信息项），全部无误才导入为草稿")
async def import_catalog(
    uow: UoW, file: UploadFile, principal: DeptAdmin, prof: Annotated[Profile, Depends(profile)]
) -> dict[str, Any]:
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise domain.violation(
            [domain.FieldProblem("file", "too_large", "文件超过 50 MB，请分批上传。", "The file exceeds 50 MB.")]
        )
    imported = await flows.import_workbook(uow, principal, data, profile=prof, filename=file.filename)
    return {"imported": len(imported), "resources": imported}


@router.get("/export", summary="导出目录表格（.xlsx，与上传格式相同）")
async def export_catalog(
    uow: UoW,
    principal: CurrentPrincipal,
    department: Annotated[str | None, Query(description="提供方代码；不填则导出本级全部已发布资源")] = None,
    include_drafts: Annotated[bool, Query(description="含本部门草稿（仅本部门与平台管理员）")] = False,
) -> Response:
    if department is not None:
        drafts = include_drafts and sees_drafts(principal, department)
        if drafts:
            rows = await store.working_contents(uow.conn, department=department)
        else:
            rows = await store.published_contents(uow.conn, limit=EXPORT_LIMIT, department=department)
        name = f"政务信息资源目录-{department}.xlsx"
    else:
        rows = await store.published_contents(uow.conn, limit=EXPORT_LIMIT)
        name = "政务信息资源目录.xlsx"
    data = await asyncio.to_thread(spreadsheet.write, rows)
    return _xlsx(data, name)


@router.get("/export/template", summary="空白目录表格模板（含代码表）")
async def template() -> Response:
    return _xlsx(await asyncio.to_thread(spreadsheet.write, []), "政务信息资源目录模板.xlsx")


def _xlsx(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename=catalog.xlsx; filename*=UTF-8''{quote(filename)}"},
    )
