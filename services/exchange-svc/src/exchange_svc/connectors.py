"""The departments' front-end connectors (前置机) as the platform sees them, and the online queries they answer.

A connector reports itself with a heartbeat (its sources' lag, spool and dead letters, its subscriptions'
cursors, and the interface resources it answers for), so the platform office sees every connector's last
heartbeat and lag. An online query of an "interface" resource whose provider's connector answers for it is
forwarded to that connector with the token the connector registered; its rows are then shaped by the same
grant decision and masking as hosted records (domain.access). A connector that does not answer is a 503.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import Forbidden, Unavailable

from exchange_svc.domain.resources import HostedResource, record_key
from exchange_svc.events import CONNECTOR_REGISTERED, ConnectorRegistered

log = logging.getLogger("govshare.exchange.connectors")

ONLINE_WITHIN = timedelta(seconds=60)
QUERY_TIMEOUT = 10.0


async def heartbeat(uow: UnitOfWork, principal: Principal, *, name: str, report: dict[str, Any]) -> dict[str, Any]:
    if principal.department is None:
        raise Forbidden("前置机须属于某一部门。", "A connector belongs to a department.", code="no_department")
    now = uow.clock.now()
    serves = sorted({str(s) for s in report.get("serves") or []})
    before = (
        await uow.execute(
            text("SELECT serve_url, serves FROM connector WHERE department_code = :d AND name = :n FOR UPDATE"),
            {"d": principal.department, "n": name},
        )
    ).one_or_none()
    await uow.execute(
        text(
            "INSERT INTO connector (department_code, name, principal, serve_url, serve_token, serves, report, "
            "first_seen_at, last_heartbeat_at) VALUES (:d, :n, :p, :url, :token, :serves, CAST(:report AS jsonb), "
            ":at, :at) ON CONFLICT (department_code, name) DO UPDATE SET principal = :p, serve_url = :url, "
            "serve_token = :token, serves = :serves, report = CAST(:report AS jsonb), last_heartbeat_at = :at"
        ),
        {
            "d": principal.department,
            "n": name,
            "p": principal.subject,
            "url": report.get("serve_url"),
            "token": report.get("serve_token"),
            "serves": serves,
            "report": json.dumps(
                {"sources": report.get("sources") or [], "subscriptions": report.get("subscriptions") or []},
                ensure_ascii=False,
            ),
            "at": now,
        },
    )
    if before is None or before.serve_url != report.get("serve_url") or list(before.serves) != serves:
        uow.emit(
            CONNECTOR_REGISTERED,
            f"{principal.department}/{name}",
            ConnectorRegistered(
                department_code=principal.department, name=name, serves=serves, serve_url=report.get("serve_url")
            ),
        )
    return {"name": name, "department_code": principal.department, "last_heartbeat_at": now}


async def listing(uow: UnitOfWork, principal: Principal) -> dict[str, Any]:
    everyone = principal.has("platform_admin")
    rows = await uow.execute(
        text(
            "SELECT department_code, name, serve_url, serves, report, first_seen_at, last_heartbeat_at FROM connector "
            "WHERE CAST(:d AS text) IS NULL OR department_code = :d ORDER BY department_code, name"
        ),
        {"d": None if everyone else principal.department},
    )
    now = uow.clock.now()
    items = []
    for r in rows:
        report = r.report if isinstance(r.report, dict) else json.loads(r.report)
        sources = report.get("sources") or []
        items.append(
            {
                "department_code": r.department_code,
                "name": r.name,
                "serves": list(r.serves),
                "online": now - r.last_heartbeat_at <= ONLINE_WITHIN,
                "first_seen_at": r.first_seen_at,
                "last_heartbeat_at": r.last_heartbeat_at,
                "lag_rows": sum(int(s.get("lag_rows") or 0) for s in sources),
                "lag_seconds": max([float(s.get("lag_seconds") or 0) for s in sources] or [0.0]),
                "sources": sources,
                "subscriptions": report.get("subscriptions") or [],
            }
        )
    return {"items": items, "total": len(items), "limit": len(items), "offset": 0}


async def answering(uow: UnitOfWork, resource: HostedResource) -> Any:
    """The provider's connector that answers online queries of `resource`, if one has said so."""
    if resource.share_method_type != "interface":
        return None
    return (
        await uow.execute(
            text(
                "SELECT name, serve_url, serve_token, last_heartbeat_at FROM connector WHERE department_code = :d "
                "AND :c = ANY(serves) AND serve_url IS NOT NULL ORDER BY last_heartbeat_at DESC LIMIT 1"
            ),
            {"d": resource.provider_code, "c": resource.code},
        )
    ).one_or_none()


async def ask(
    connector: Any, resource: HostedResource, *, subjects: list[str], keys: list[str]
) -> list[dict[str, Any]]:
    """The department database's answer through its connector: [{key, subject, data}] with every item."""
    try:
        async with httpx.AsyncClient(timeout=QUERY_TIMEOUT) as http:
            r = await http.get(
                f"{connector.serve_url}/query",
                params={"resource": resource.code, "subject": subjects, "key": keys},
                headers={"Authorization": f"Bearer {connector.serve_token}"},
            )
    except httpx.HTTPError as exc:
        log.warning("connector %s of %s unreachable: %s", connector.name, resource.provider_code, type(exc).__name__)
        raise _down(resource, connector.name) from exc
    if r.status_code != 200:
        log.warning("connector %s answered %s for %s", connector.name, r.status_code, resource.code)
        raise _down(resource, connector.name)
    subject_item = resource.subject_item
    out = []
    for data in r.json().get("items") or []:
        data = {k: v for k, v in data.items() if resource.item(k) is not None}
        out.append(
            {
                "key": record_key(data, resource.key_items) if all(k in data for k in resource.key_items) else None,
                "subject": data.get(subject_item.name) if subject_item else None,
                "data": data,
            }
        )
    return out


def _down(resource: HostedResource, name: str) -> Unavailable:
    return Unavailable(
        "提供部门的前置机暂时无法应答联机查询，请稍后重试。",
        f"The provider's connector ({name}) does not answer; try again later.",
        code="connector_unavailable",
        details={"resource": resource.code, "provider_code": resource.provider_code, "connector": name},
    )
