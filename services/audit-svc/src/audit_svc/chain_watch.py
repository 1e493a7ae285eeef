"""The audit chain watched, not only inspected: the entries since the latest signed checkpoint are verified on
every look at the dashboard and by a periodic job, and the outcome is a gauge (1 verifies, 0 does not) that the
platform's alert rule `GovshareAuditChainBroken` watches."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from audit_svc import ledger, trail

CHAIN_VERIFIED = Gauge(
    "govshare_audit_chain_verified", "1 when the audit entries since the latest checkpoint verify, 0 when not"
)
CHAIN_CHECKED_UP_TO = Gauge("govshare_audit_chain_verified_position", "the last position the watch verified")

# Without a checkpoint yet, the tail walked is at most this many entries (a watch, not an audit).
TAIL_WITHOUT_CHECKPOINT = 10_000


async def tail_status(conn: AsyncConnection, engine: AsyncEngine) -> dict[str, Any]:
    head = await trail.summary(conn)
    latest, _total = await ledger.list_checkpoints(conn, limit=1, offset=0)
    checkpoint = latest[0] if latest else None
    position = head["head_position"]
    first = checkpoint["position"] if checkpoint else max(1, position - TAIL_WITHOUT_CHECKPOINT + 1)
    tail = await ledger.verify(engine, first=first, last=position)
    CHAIN_VERIFIED.set(1 if tail.ok else 0)
    CHAIN_CHECKED_UP_TO.set(tail.last)
    return {
        "head_position": position,
        "head_recorded_at": head["head_recorded_at"],
        "checkpoint": (
            {"position": checkpoint["position"], "signed_at": checkpoint["signed_at"]} if checkpoint else None
        ),
        "tail": tail.as_dict(),
    }
