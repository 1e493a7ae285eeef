"""Hosted jurisdictions under /api/v1/identity (issue 16 item 6): a jurisdiction without a platform of its own
(Feicheng on Tai'an's platform, 001 Art.6) registered here with its profile, and the jurisdiction each
department belongs to. The platform office administers both; departments of no hosted jurisdiction are the
platform's own and run under its profile (`govshare_common.jurisdictions`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from govshare_common.auth import Principal, require_roles
from govshare_common.errors import Conflict, NotFound, ValidationFailed, field_error
from govshare_common.jurisdictions import DIVISION_CODE, hostable_profiles
from govshare_common.profiles import PROFILES, Profile
from govshare_common.service import UoW

from gateway import store
from gateway.events import JurisdictionRegistered
from gateway.identity_routes import emit_department, ensure_jurisdiction

router = APIRouter(prefix="/api/v1/identity", tags=["identity"])

PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]
Admin = Annotated[Principal, Depends(require_roles("platform_admin", "dept_admin", "auditor"))]


class JurisdictionIn(BaseModel):
    code: str = Field(description="行政区划代码（GB/T 2260，六位），如 370983 肥城市")
    name: str = Field(min_length=2, max_length=50, description="辖区名称，如 肥城市")
    profile: str = Field(description="该辖区执行的规则配置，如 feicheng")


class DepartmentJurisdictionIn(BaseModel):
    jurisdiction_code: str | None = Field(description="托管辖区的行政区划代码；null：本平台所在辖区")


def _platform_profile(request: Request) -> Profile:
    profile: Profile = request.app.state.profile
    return profile


def _invalid(field: str, zh: str, en: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(zh, en, details={"fields": [field_error(field, zh, en)], **details})


@router.post("/jurisdictions", status_code=201, summary="登记托管辖区（无独立平台的辖区使用本平台）")
async def register_jurisdiction(
    request: Request, uow: UoW, body: JurisdictionIn, admin: PlatformAdmin
) -> dict[str, Any]:
    if not DIVISION_CODE.fullmatch(body.code):
        raise _invalid(
            "code", "辖区代码应为六位行政区划代码（GB/T 2260）。", "code must be a six-digit GB/T 2260 division code."
        )
    platform = _platform_profile(request)
    allowed = hostable_profiles(platform)
    if body.profile not in allowed:
        raise _invalid(
            "profile",
            f"规则配置须为以下之一：{'、'.join(allowed)}（本平台自身的规则无须登记辖区）。",
            f"profile must be one of: {', '.join(allowed)} (the platform's own needs no jurisdiction).",
            allowed=allowed,
        )
    name = body.name.strip()
    if len(name) < 2:
        raise _invalid("name", "请填写辖区名称。", "Give the jurisdiction's name.")
    if not await store.insert_jurisdiction(uow.conn, code=body.code, name=name, profile=body.profile, by=admin.subject):
        raise Conflict("该辖区已登记。", "This jurisdiction is already registered.", details={"code": body.code})
    uow.emit(
        "identity.jurisdiction.registered",
        body.code,
        JurisdictionRegistered(code=body.code, name=name, profile=body.profile, actor=admin.subject),
    )
    return {"code": body.code, "name": name, "profile": body.profile, "departments": 0}


@router.get("/jurisdictions", summary="本平台所在辖区与托管辖区")
async def list_jurisdictions(request: Request, _p: Admin) -> dict[str, Any]:
    platform = _platform_profile(request)
    async with request.app.state.db.engine.connect() as conn:
        items = await store.jurisdictions(conn)
    for item in items:
        known = PROFILES.get(item["profile"])
        item["profile_display_name"] = known.display_name if known else item["profile"]
    return {
        "platform": {"name": platform.display_name, "profile": platform.name},
        "items": items,
        "total": len(items),
    }


@router.put("/departments/{code}/jurisdiction", summary="调整部门所属辖区")
async def set_department_jurisdiction(
    uow: UoW, code: str, body: DepartmentJurisdictionIn, _admin: PlatformAdmin
) -> dict[str, Any]:
    hosted = await ensure_jurisdiction(uow, body.jurisdiction_code)
    if not await store.set_department_jurisdiction(uow.conn, code, body.jurisdiction_code):
        raise NotFound("部门不存在。", "No such department.", details={"code": code})
    await emit_department(uow, code)
    return {
        "code": code,
        "jurisdiction_code": body.jurisdiction_code,
        "jurisdiction_name": hosted.name if hosted else None,
        "jurisdiction_profile": hosted.profile if hosted else None,
    }
