"""What the connector reports about itself: per source its lag (rows and seconds), spool depth, last success
and errors; per subscription its cursor and lag. Printed by `govshare-connector status`, served at /status,
exported at /metrics and sent to the platform with every heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge

from connector.config import ConnectorConfig
from connector.state import State

SPOOL_DEPTH = Gauge("govshare_connector_spool_depth", "changes captured and not yet held by the platform", ["source"])
LAG_SECONDS = Gauge(
    "govshare_connector_lag_seconds", "age of the oldest change not yet held by the platform", ["source"]
)
PUSHED = Gauge("govshare_connector_pushed_rows", "changes the platform holds, since the source began", ["source"])
DEAD = Gauge("govshare_connector_dead_letters", "refused rows waiting for the department", ["source"])
WAL = Gauge("govshare_connector_wal_retained_bytes", "WAL the replication slot keeps on the source", ["source"])
SUB_LAG = Gauge("govshare_connector_subscription_lag", "changes of a subscription not yet written locally", ["name"])


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def build(state: State, config: ConnectorConfig) -> dict[str, Any]:
    now = datetime.now(UTC)
    known = await state.source_status()
    sources = []
    for s in config.sources:
        row = known.get(s.name, {})
        oldest = row.get("oldest_spooled_at")
        sources.append(
            {
                "name": s.name,
                "resource": s.resource,
                "kind": s.kind,
                "lag_rows": int(row.get("spool_depth") or 0),
                "lag_seconds": round((now - oldest).total_seconds(), 3) if oldest else 0.0,
                "spool_depth": int(row.get("spool_depth") or 0),
                "captured_rows": int(row.get("captured_rows") or 0),
                "pushed_rows": int(row.get("pushed_rows") or 0),
                "pushed_batches": int(row.get("pushed_batches") or 0),
                "dead_letters": int(row.get("dead_letters") or 0),
                "last_success_at": _iso(row.get("last_success_at")),
                "last_error": row.get("last_error"),
                "last_error_at": _iso(row.get("last_error_at")),
                "wal_retained_bytes": row.get("wal_retained_bytes"),
                "wal_status": row.get("wal_status"),
            }
        )
    subs_known = await state.subscription_status()
    subscriptions = []
    for sub in config.subscriptions:
        row = subs_known.get(sub.name, {})
        cursor, head = row.get("cursor"), row.get("head")
        subscriptions.append(
            {
                "name": sub.name,
                "resource": sub.resource,
                "subscription_id": row.get("subscription_id"),
                "cursor": cursor,
                "lag": max(0, int(head) - int(cursor)) if head is not None and cursor is not None else None,
                "last_success_at": _iso(row.get("last_success_at")),
                "last_error": row.get("last_error"),
            }
        )
    return {
        "connector": config.connector.name,
        "at": now.isoformat(),
        "sources": sources,
        "subscriptions": subscriptions,
    }


def export_metrics(report: dict[str, Any]) -> None:
    for s in report["sources"]:
        SPOOL_DEPTH.labels(s["name"]).set(s["spool_depth"])
        LAG_SECONDS.labels(s["name"]).set(s["lag_seconds"])
        PUSHED.labels(s["name"]).set(s["pushed_rows"])
        DEAD.labels(s["name"]).set(s["dead_letters"])
        WAL.labels(s["name"]).set(s["wal_retained_bytes"] or 0)
    for sub in report["subscriptions"]:
        SUB_LAG.labels(sub["name"]).set(sub["lag"] or 0)


def render(report: dict[str, Any]) -> str:
    lines = [f"connector {report['connector']} at {report['at']}", "", "sources:"]
    head = (
        f"  {'name':<20} {'resource':<18} {'lag rows':>9} {'lag s':>8} {'pushed':>9} {'dead':>5}  last success / error"
    )
    lines.append(head)
    for s in report["sources"]:
        tail = s["last_error"] or s["last_success_at"] or "-"
        wal = f" wal {s['wal_retained_bytes'] / 1048576:.1f} MB" if s["wal_retained_bytes"] is not None else ""
        lines.append(
            f"  {s['name']:<20} {s['resource']:<18} {s['lag_rows']:>9} {s['lag_seconds']:>8.1f} {s['pushed_rows']:>9} "
            f"{s['dead_letters']:>5}  {tail}{wal}"
        )
    lines += ["", "subscriptions:", f"  {'name':<20} {'resource':<18} {'cursor':>9} {'lag':>7}  last success / error"]
    for sub in report["subscriptions"]:
        tail = sub["last_error"] or sub["last_success_at"] or "-"
        lines.append(
            f"  {sub['name']:<20} {sub['resource']:<18} {sub['cursor'] if sub['cursor'] is not None else '-':>9} "
            f"{sub['lag'] if sub['lag'] is not None else '-':>7}  {tail}"
        )
    return "\n".join(lines)
