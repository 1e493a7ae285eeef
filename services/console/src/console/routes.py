"""HTTP only: the console's pages and files under /console/, and its two small APIs under /console/api/.

The gateway forwards /console/ without deciding who may call; the APIs therefore verify the caller's token
themselves (the gateway's JWKS, like every service) and refuse what the caller's roles do not allow.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from govshare_common.auth import CurrentPrincipal, Principal, require_roles
from govshare_common.errors import ValidationFailed, field_error

from console import assets, working_days

log = logging.getLogger("govshare.console")

router = APIRouter()

PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]


@router.get("/console/api/platform/status", summary="平台运行状态：各服务就绪情况、事件速率与消费积压（平台管理机构）")
async def platform_status(request: Request, _admin: PlatformAdmin) -> dict[str, Any]:
    return await request.app.state.platform_status.sample()  # type: ignore[no-any-return]


@router.get("/console/api/profile", summary="本平台的辖区规则名称与可用功能（控制台据此显示菜单）")
async def profile(request: Request, _principal: CurrentPrincipal) -> dict[str, Any]:
    prof = request.app.state.profile
    return {
        "name": prof.name,
        "display_name": prof.display_name,
        "features": {"complaints": prof.complaints, "open_data": prof.open_data},
    }


@router.get("/console/api/working-days", summary="距各期限的剩余工作日（按平台工作日历）")
async def working_days_until(
    request: Request,
    _principal: CurrentPrincipal,
    until: Annotated[list[str], Query(max_length=200, description="期限日期 YYYY-MM-DD，可多个")],
) -> dict[str, Any]:
    try:
        dues = sorted({date.fromisoformat(u[:10]) for u in until})
    except ValueError:
        raise ValidationFailed(
            "期限日期格式应为 YYYY-MM-DD。",
            "until must be dates as YYYY-MM-DD.",
            details={"fields": [field_error("until", "日期格式应为 YYYY-MM-DD", "not a date")]},
        ) from None
    today, days = await working_days.days_left(
        request.app.state.gateway_http,
        request.headers["authorization"],
        request.app.state.clock.now(),
        dues,
    )
    return {"today": today.isoformat(), "days": days}


@router.get("/console/{path:path}", include_in_schema=False)
async def page(path: str) -> Response:
    return assets.serve(f"/console/{path}")
