"""The department-side HTTP surface of a running connector (`govshare-connector run`): /healthz, /readyz,
/metrics, /status and the online-query endpoint the platform forwards interface queries to.

Kept apart from app.py, whose platform-service shape pulls in the broker client and migrations a connector
never uses: a department's machine runs this one, lean.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connector.runtime import Connector

log = logging.getLogger("govshare.connector.http")


def _error(status: int, code: str, zh: str, en: str, details: Any = None) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": zh, "details": {"message_en": en, **(details or {})}, "trace_id": None},
        status_code=status,
    )


def create_connector_app(connector: Connector, *, manage: bool = True) -> FastAPI:
    """The department-side HTTP surface of a running connector (started and stopped with it if `manage`)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage:
            await connector.start()
        try:
            yield
        finally:
            if manage:
                await connector.stop()

    app = FastAPI(title=f"govshare connector {connector.config.connector.name} 前置机", lifespan=lifespan)
    app.state.connector = connector

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "connector", "name": connector.config.connector.name}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {"startup": "ok" if connector.started else "in progress"}
        if connector.state is not None:
            try:
                await connector.state.pool.fetchval("SELECT 1")
                checks["state_database"] = "ok"
            except Exception as exc:
                checks["state_database"] = f"unreachable: {type(exc).__name__}"
        checks["platform"] = "ok" if connector.heartbeat_error is None else f"unreachable: {connector.heartbeat_error}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/status")
    async def status_report(request: Request) -> Any:
        if not _local(request, connector):
            return _error(403, "forbidden", "仅限本机或平台查看。", "Only this machine or the platform may ask.")
        return await connector.report()

    @app.get("/query")
    async def query(
        request: Request,
        resource: Annotated[str, Query(min_length=1)],
        subject: Annotated[list[str] | None, Query()] = None,
        key: Annotated[list[str] | None, Query()] = None,
    ) -> Any:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not _local(request, connector) or not hmac.compare_digest(presented, connector.serve_token):
            log.warning(
                "online query refused: caller %s is not the platform", request.client.host if request.client else "?"
            )
            return _error(
                403, "not_platform", "仅接受平台转发的联机查询。", "Only the platform may query this connector."
            )
        served = connector.served.get(resource)
        if served is None:
            return _error(
                404, "not_served", "本前置机不提供该资源的联机查询。", "This connector does not serve that resource."
            )
        rows = await served.query(subject or [], key or [])
        return {"items": rows, "total": len(rows)}

    return app


def _local(request: Request, connector: Connector) -> bool:
    host = request.client.host if request.client else ""
    return host in connector.config.connector.platform_addresses
