"""/api/v1/supervision/chain-status: the audit chain's state for the platform office's dashboard — the head,
the latest signed checkpoint and a verification of the entries since it. The whole-chain walk and the
entries themselves stay with the auditors (/api/v1/audit)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from govshare_common.auth import Principal, require_roles
from govshare_common.service import UoW

from audit_svc import ledger, trail
from audit_svc.routes.common import SUPERVISION

router = APIRouter(prefix=SUPERVISION, tags=["supervision"])

Watcher = Annotated[Principal, Depends(require_roles("platform_admin", "auditor"))]

# Without a checkpoint yet, the tail walked is at most this many entries (a dashboard call, not an audit).
TAIL_WITHOUT_CHECKPOINT = 10_000


@router.get("/chain-status", summary="审计日志链状态：链头、最新签名检查点、其后记录的校验结果")
async def chain_status(request: Request, uow: UoW, _: Watcher) -> dict[str, Any]:
    head = await trail.summary(uow.conn)
    latest, _total = await ledger.list_checkpoints(uow.conn, limit=1, offset=0)
    checkpoint = latest[0] if latest else None
    position = head["head_position"]
    first = checkpoint["position"] if checkpoint else max(1, position - TAIL_WITHOUT_CHECKPOINT + 1)
    tail = await ledger.verify(request.app.state.db.engine, first=first, last=position)
    return {
        "head_position": position,
        "head_recorded_at": head["head_recorded_at"],
        "checkpoint": (
            {"position": checkpoint["position"], "signed_at": checkpoint["signed_at"]} if checkpoint else None
        ),
        "tail": tail.as_dict(),
    }
