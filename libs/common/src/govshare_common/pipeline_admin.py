"""The platform office's view of a service's event pipeline (HTTP only): the quarantined events, and a retry or
a skip of one; the consumers' cursors and the jobs' ticks, each with the replica that last moved it. Reached
through the gateway under the area the service owns, platform_admin only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from govshare_common.auth import Principal, require_roles
from govshare_common.bounds import BIGINT_MAX
from govshare_common.errors import AppError

# The /api/v1 area through which the gateway reaches each service's pipeline routes (an area it already
# routes to that service and lets platform_admin into).
ADMIN_AREAS = {
    "gateway": "platform",
    "catalog": "catalog",
    "request": "requests",
    "exchange": "exchange",
    "audit": "supervision",
}

PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]
Source = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{0,40}$")]
Seq = Annotated[int, Path(ge=1, le=BIGINT_MAX)]


def admin_prefix(service: str) -> str:
    return f"/api/v1/{ADMIN_AREAS.get(service, service)}/pipeline"


def _inbox(request: Request) -> Any:
    inbox = getattr(request.app.state, "inbox", None)
    if inbox is None:
        raise AppError(
            "本服务不消费其他服务的事件，没有隔离区。",
            "This service consumes no events, so it has no quarantine.",
            code="no_consumer",
            status=404,
        )
    return inbox


def quarantine_router(service: str) -> APIRouter:
    router = APIRouter(prefix=admin_prefix(service), tags=["pipeline"])

    @router.get("/quarantine", summary="隔离的事件（处理失败，等待平台管理员重试或跳过）")
    async def list_quarantine(
        request: Request,
        _admin: PlatformAdmin,
        status: Literal["held", "retried", "skipped", "all"] = "held",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        items = await _inbox(request).list_quarantined(status=None if status == "all" else status, limit=limit)
        return {"service": service, "items": [asdict(i) for i in items]}

    @router.post("/quarantine/{source}/{seq}/retry", summary="重试一条隔离的事件（及其后等待的同一对象事件）")
    async def retry(request: Request, admin: PlatformAdmin, source: Source, seq: Seq) -> dict[str, Any]:
        return await _inbox(request).retry(source, seq, by=admin.subject)  # type: ignore[no-any-return]

    @router.post("/quarantine/{source}/{seq}/skip", summary="跳过一条隔离的事件（不再处理）")
    async def skip(request: Request, admin: PlatformAdmin, source: Source, seq: Seq) -> dict[str, Any]:
        return await _inbox(request).skip(source, seq, by=admin.subject)  # type: ignore[no-any-return]

    @router.get("/consumers", summary="消费进度：每个来源分区处理到的序号、条数、时间与处理它的副本")
    async def consumers(request: Request, _admin: PlatformAdmin) -> dict[str, Any]:
        return {"service": service, "items": await _inbox(request).cursors()}

    @router.get("/jobs", summary="定时任务：周期、已运行的周期数与最近一次由哪个副本运行")
    async def jobs(request: Request, _admin: PlatformAdmin) -> dict[str, Any]:
        runner = getattr(request.app.state, "jobs", None)
        return {"service": service, "items": await runner.ticks() if runner is not None else []}

    return router
