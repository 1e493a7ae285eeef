"""/api/v1/supervision/chain-status: the audit chain's state for the platform office's dashboard — the head,
the latest signed checkpoint and a verification of the entries since it. The whole-chain walk and the
entries themselves stay with the auditors (/api/v1/audit)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from govshare_common.auth import Principal, require_roles
from govshare_common.service import UoW

from audit_svc import chain_watch
from audit_svc.routes.common import SUPERVISION

router = APIRouter(prefix=SUPERVISION, tags=["supervision"])

Watcher = Annotated[Principal, Depends(require_roles("platform_admin", "auditor"))]


@router.get("/chain-status", summary="审计日志链状态：链头、最新签名检查点、其后记录的校验结果")
async def chain_status(request: Request, uow: UoW, _: Watcher) -> dict[str, Any]:
    return await chain_watch.tail_status(uow.conn, request.app.state.db.engine)
