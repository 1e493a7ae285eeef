"""A department's batches while they run and after: state, rows done, total, rate, time left; cancel."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from govshare_common.service import UoW

from exchange_svc import batch_runs
from exchange_svc.domain.batch_progress import STATES
from exchange_svc.routes.common import PREFIX, Limit, Offset, Sender, Staff, page

router = APIRouter(tags=["batches"])


@router.get(f"{PREFIX}/batches", summary="本部门的报送批次及其进度（平台管理机构看全部）")
async def list_batches(
    uow: UoW,
    principal: Staff,
    state: Annotated[str | None, Query(description=f"状态：{' / '.join(STATES)}")] = None,
    resource_code: Annotated[str | None, Query(description="资源代码")] = None,
    batch_id: Annotated[str | None, Query(description="批次号")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await batch_runs.list_runs(
        uow, principal, state=state, resource_code=resource_code, batch_id=batch_id, limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


@router.get(f"{PREFIX}/batches/{{run_id}}", summary="一个报送批次的进度")
async def get_batch(uow: UoW, principal: Staff, run_id: uuid.UUID) -> dict[str, Any]:
    return await batch_runs.get_run(uow, principal, run_id)


@router.post(f"{PREFIX}/batches/{{run_id}}/cancel", summary="取消本部门正在报送的批次（不留下任何数据）")
async def cancel_batch(uow: UoW, principal: Sender, run_id: uuid.UUID) -> dict[str, Any]:
    return await batch_runs.request_cancel(uow, principal, run_id)
