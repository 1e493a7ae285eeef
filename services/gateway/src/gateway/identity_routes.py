"""Identity administration under /api/v1/identity: departments and their filing, users, machine clients, keys.

platform_admin manages departments and filings (and may manage anyone); dept_admin manages its own
department's users and clients. Administration and audit stay with different accounts: no account holds
platform_admin or dept_admin together with auditor.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from govshare_common.auth import ROLES, Principal, require_roles
from govshare_common.bounds import MAX_OFFSET, Moment
from govshare_common.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from govshare_common.identifiers import InvalidIdentifier, validate_uscc
from govshare_common.service import UoW

from gateway import second_factor, store
from gateway.events import PrincipalChanged, SecondFactorChanged, SigningKeyRotated
from gateway.live_state import notify_change
from gateway.passwords import complexity_problems, hash_password
from gateway.secrets_util import new_secret, secret_hash

log = logging.getLogger("govshare.gateway.identity")

router = APIRouter(prefix="/api/v1/identity", tags=["identity"])

PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]
Admin = Annotated[Principal, Depends(require_roles("platform_admin", "dept_admin"))]

CLIENT_ROLES = {"dept_system", "federation_peer"}
DEPT_ADMIN_GRANTABLE = {"dept_admin", "dept_reviewer", "dept_system"}


def _invalid(field: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed(zh, en, details={"fields": [field_error(field, zh, en)]})


def _page(limit: int, offset: int, total: int, items: list[Any]) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _principal_changed(
    uow: UoW, principal_id: str, *, kind: str, department_code: str | None, roles: list[str], status: str, change: str
) -> None:
    uow.emit(
        "identity.principal.changed",
        principal_id,
        PrincipalChanged(
            principal_id=principal_id,
            kind=kind,
            department_code=department_code,
            roles=sorted(roles),
            status=status,
            change=change,
        ),
    )


async def _department_scoped_page(
    request: Request, admin: Principal, *, table: str, filters: ListFilters, limit: int, offset: int
) -> dict[str, Any]:
    """A page of `table` (users or clients): all of it for platform_admin, one's own department otherwise;
    narrowed by a text, a status and (for the platform office) a department."""
    scope = admin.department if not admin.has("platform_admin") else filters.department_code
    async with request.app.state.db.engine.connect() as conn:
        total, items = await store.department_scoped_page(
            conn, table, department=scope, status=filters.status, q=filters.q or None, limit=limit, offset=offset
        )
    return _page(limit, offset, total, items)


class ListFilters(BaseModel):
    """What an identity list can be narrowed by (every list in the console is filterable)."""

    q: str | None = Field(default=None, max_length=100, description="名称、代码或账号中包含的文字")
    status: Literal["active", "disabled"] | None = Field(default=None, description="状态")
    department_code: str | None = Field(default=None, max_length=18, description="所属部门（平台管理机构可选）")


Filters = Annotated[ListFilters, Query()]


# --- departments ---------------------------------------------------------------------------------------------


class DepartmentIn(BaseModel):
    code: str = Field(description="统一社会信用代码")
    name: str = Field(min_length=2, max_length=100)
    level: Literal["province", "city", "district", "county", "township"]
    parent_code: str | None = None
    jurisdiction_code: str | None = Field(
        default=None, description="所属托管辖区的行政区划代码（不填：本平台所在辖区）", max_length=6
    )
    confirm_check_digit: bool = Field(default=False, description="代码校验位不符但确认登记")


class FilingIn(BaseModel):
    signed_by: str = Field(min_length=2, max_length=50, description="签署承诺书的负责人")
    signed_at: Moment
    commitment: str = Field(min_length=4, description="承诺遵守共享规则的书面承诺内容或文号")


class StatusIn(BaseModel):
    status: Literal["active", "disabled"]


async def emit_department(uow: UoW, code: str) -> None:
    row = await store.department(uow.conn, code)
    uow.emit(
        "identity.department.changed",
        code,
        {
            "code": code,
            "name": row.name,
            "level": row.level,
            "parent_code": row.parent_code,
            "status": row.status,
            "filed": row.filed_at is not None,
            "jurisdiction_code": row.jurisdiction_code,
            "profile": row.jurisdiction_profile,
        },
    )


async def ensure_jurisdiction(uow: UoW, code: str | None) -> Any:
    """The hosted jurisdiction named by a department's `jurisdiction_code` (None: the platform's own)."""
    if code is None:
        return None
    found = await store.jurisdiction(uow.conn, code)
    if found is None:
        raise _invalid(
            "jurisdiction_code",
            "该辖区未在本平台登记，请先登记托管辖区。",
            "No such jurisdiction is hosted here; register it first.",
        )
    return found


@router.post("/departments", status_code=201, summary="登记部门")
async def create_department(uow: UoW, body: DepartmentIn, _admin: PlatformAdmin) -> dict[str, Any]:
    try:
        result = validate_uscc(body.code)
    except InvalidIdentifier:
        raise _invalid(
            "code", "部门代码不是有效的统一社会信用代码格式。", "code is not a unified social credit code."
        ) from None
    if not result.check_ok and not body.confirm_check_digit:
        raise _invalid(
            "code",
            "统一社会信用代码校验位不符；如确认无误，请设置 confirm_check_digit=true 后重新提交。",
            "The code's check character is wrong; resend with confirm_check_digit=true if it is right.",
        )
    if body.parent_code and not await store.department_exists(uow.conn, body.parent_code):
        raise _invalid("parent_code", "上级部门不存在。", "The parent department does not exist.")
    hosted = await ensure_jurisdiction(uow, body.jurisdiction_code)
    inserted = await store.insert_department(
        uow.conn,
        code=result.value,
        name=body.name,
        level=body.level,
        parent=body.parent_code,
        jurisdiction=body.jurisdiction_code,
    )
    if not inserted:
        raise Conflict("该部门已登记。", "This department is already registered.", details={"code": result.value})
    await emit_department(uow, result.value)
    return {
        "code": result.value,
        "name": body.name,
        "level": body.level,
        "parent_code": body.parent_code,
        "status": "active",
        "filed": False,
        "jurisdiction_code": body.jurisdiction_code,
        "jurisdiction_name": hosted.name if hosted else None,
        "jurisdiction_profile": hosted.profile if hosted else None,
    }


@router.get("/departments", summary="部门列表")
async def list_departments(
    request: Request,
    _p: Admin,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    async with request.app.state.db.engine.connect() as conn:
        total, items = await store.departments_page(
            conn, status=filters.status, q=filters.q or None, limit=limit, offset=offset
        )
    return _page(limit, offset, total, items)


@router.post("/departments/{code}/filing", summary="部门接入备案（签署共享规则承诺）")
async def file_department(uow: UoW, code: str, body: FilingIn, _admin: PlatformAdmin) -> dict[str, Any]:
    filed = await store.file_department(
        uow.conn, code, by=body.signed_by, at=body.signed_at, commitment=body.commitment
    )
    if not filed:
        raise NotFound("部门不存在。", "No such department.", details={"code": code})
    await emit_department(uow, code)
    return {"code": code, "filed": True, "filed_by": body.signed_by, "filed_at": body.signed_at}


@router.patch("/departments/{code}", summary="启用或停用部门")
async def set_department_status(uow: UoW, code: str, body: StatusIn, _admin: PlatformAdmin) -> dict[str, Any]:
    if not await store.set_department_status(uow.conn, code, body.status):
        raise NotFound("部门不存在。", "No such department.", details={"code": code})
    await notify_change(uow.conn, "department", code)
    await emit_department(uow, code)
    return {"code": code, "status": body.status}


# --- users ----------------------------------------------------------------------------------------------------


class UserIn(BaseModel):
    username: str = Field(pattern=r"^[a-zA-Z0-9_.-]{3,40}$")
    display_name: str = Field(min_length=1, max_length=50)
    department_code: str | None = None
    roles: list[str] = Field(min_length=1)
    password: str


class UserPatch(BaseModel):
    status: Literal["active", "disabled"] | None = None
    roles: list[str] | None = None


def _check_roles(field: str, roles: list[str], admin: Principal, department: str | None) -> None:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise _invalid(field, f"未知角色：{'、'.join(unknown)}。", f"Unknown roles: {', '.join(unknown)}.")
    if "auditor" in roles and ({"platform_admin", "dept_admin"} & set(roles)):
        raise _invalid(
            field,
            "管理职责与审计职责须由不同账号承担：审计员不能同时是管理员。",
            "Administration and audit duties need separate accounts: an auditor cannot also be an administrator.",
        )
    if not admin.has("platform_admin"):
        if department != admin.department:
            raise Forbidden(
                "部门管理员只能管理本部门的账号。", "A department administrator manages only their own department."
            )
        if set(roles) - DEPT_ADMIN_GRANTABLE:
            raise Forbidden(
                "部门管理员只能授予本部门角色（dept_admin、dept_reviewer、dept_system）。",
                "A department administrator can grant only department roles.",
            )


async def _user_dept(uow: UoW, user_id: str) -> Any:
    try:
        uid = uuid.UUID(user_id)
    except ValueError:
        raise NotFound("用户不存在。", "No such user.") from None
    row = await store.user(uow.conn, uid)
    if row is None:
        raise NotFound("用户不存在。", "No such user.")
    return row


@router.post("/users", status_code=201, summary="创建用户")
async def create_user(uow: UoW, body: UserIn, admin: Admin) -> dict[str, Any]:
    _check_roles("roles", body.roles, admin, body.department_code)
    problems = complexity_problems(body.password)
    if problems:
        raise _invalid(
            "password", "密码不符合要求：" + "；".join(problems) + "。", "The password does not meet the rules."
        )
    if body.department_code and not await store.department_exists(uow.conn, body.department_code):
        raise _invalid("department_code", "部门不存在。", "No such department.")
    user_id = uuid.uuid4()
    inserted = await store.insert_user(
        uow.conn,
        user_id=user_id,
        username=body.username,
        display_name=body.display_name,
        department=body.department_code,
        roles=sorted(body.roles),
        password_hash=hash_password(body.password),
        by=admin.subject,
    )
    if not inserted:
        raise Conflict("用户名已被使用。", "The username is taken.", details={"username": body.username})
    _principal_changed(
        uow,
        str(user_id),
        kind="user",
        department_code=body.department_code,
        roles=sorted(body.roles),
        status="active",
        change="created",
    )
    return {
        "id": str(user_id),
        "username": body.username,
        "department_code": body.department_code,
        "roles": sorted(body.roles),
    }


@router.get("/users", summary="用户列表（部门管理员只见本部门）")
async def list_users(
    request: Request,
    admin: Admin,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    return await _department_scoped_page(
        request,
        admin,
        table="app_user",
        filters=filters,
        limit=limit,
        offset=offset,
    )


@router.patch("/users/{user_id}", summary="停用/启用用户或调整角色")
async def patch_user(uow: UoW, user_id: str, body: UserPatch, admin: Admin) -> dict[str, Any]:
    row = await _user_dept(uow, user_id)
    roles = body.roles if body.roles is not None else list(row.roles)
    _check_roles("roles", roles, admin, row.department_code)
    if admin.subject == user_id and body.status == "disabled":
        raise _invalid("status", "不能停用自己的账号。", "You cannot disable your own account.")
    updated = await store.update_user(uow.conn, row.id, status=body.status, roles=sorted(roles))
    await notify_change(uow.conn, "user", user_id)
    _principal_changed(
        uow,
        user_id,
        kind="user",
        department_code=updated.department_code,
        roles=sorted(roles),
        status=updated.status,
        change="updated",
    )
    return {"id": user_id, "status": updated.status, "roles": sorted(roles)}


@router.delete("/users/{user_id}/second-factor", summary="重置管理员的动态口令（须另一位平台管理员）")
async def reset_second_factor(request: Request, uow: UoW, user_id: str, admin: PlatformAdmin) -> dict[str, Any]:
    row = await _user_dept(uow, user_id)
    if admin.subject == user_id:
        raise Forbidden(
            "不能重置自己的动态口令，请由另一位平台管理员操作。",
            "Another platform administrator must reset your second factor, not you.",
            code="second_factor_reset_by_self",
        )
    if not await second_factor.reset(uow, row.id):
        raise NotFound("该用户没有绑定动态口令。", "The user has no second factor to reset.")
    log.warning("second factor of user %s reset by platform administrator %s", user_id, admin.subject)
    uow.emit(
        "identity.second_factor.changed",
        user_id,
        SecondFactorChanged(principal_id=user_id, change="reset", by=admin.subject),
    )
    return {"id": user_id, "second_factor": "reset"}


# --- machine clients ------------------------------------------------------------------------------------------


class ClientIn(BaseModel):
    name: str = Field(min_length=2, max_length=100)
    department_code: str
    roles: list[str] = Field(default_factory=lambda: ["dept_system"])
    cert_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="绑定的客户端证书指纹（前置机）"
    )
    rate_per_second: float = Field(default=50.0, gt=0, le=10_000)
    burst: int = Field(default=100, ge=1, le=100_000)


class RotateIn(BaseModel):
    overlap_hours: float = Field(default=24.0, ge=0, le=24 * 30, description="旧密钥继续有效的小时数")


async def _client_row(uow: UoW, client_id: str, admin: Principal) -> Any:
    row = await store.client(uow.conn, client_id)
    if row is None:
        raise NotFound("客户端不存在。", "No such client.", details={"client_id": client_id})
    if not admin.has("platform_admin") and row.department_code != admin.department:
        raise Forbidden(
            "部门管理员只能管理本部门的客户端。",
            "A department administrator manages only their own department's clients.",
        )
    return row


@router.post("/clients", status_code=201, summary="创建机器客户端（密钥只显示一次）")
async def create_client(request: Request, uow: UoW, body: ClientIn, admin: Admin) -> dict[str, Any]:
    bad = sorted(set(body.roles) - CLIENT_ROLES)
    if bad or not body.roles:
        raise _invalid(
            "roles",
            "机器客户端只能具有 dept_system 或 federation_peer 角色。",
            "Clients may hold only dept_system or federation_peer.",
        )
    if not admin.has("platform_admin") and body.department_code != admin.department:
        raise Forbidden(
            "部门管理员只能为本部门创建客户端。",
            "A department administrator creates clients for their own department only.",
        )
    if not await store.department_exists(uow.conn, body.department_code):
        raise _invalid("department_code", "部门不存在。", "No such department.")
    client_id = f"gs-{uuid.uuid4().hex[:20]}"
    secret = new_secret()
    await store.insert_client(
        uow.conn,
        client_id=client_id,
        name=body.name,
        department=body.department_code,
        roles=sorted(body.roles),
        secret_hash=secret_hash(secret, request.app.state.settings.purpose_keys()),
        cert_sha256=body.cert_sha256,
        rate_per_second=body.rate_per_second,
        burst=body.burst,
        by=admin.subject,
    )
    await notify_change(uow.conn, "client", client_id)
    _principal_changed(
        uow,
        client_id,
        kind="client",
        department_code=body.department_code,
        roles=sorted(body.roles),
        status="active",
        change="created",
    )
    return {
        "client_id": client_id,
        "client_secret": secret,
        "notice": "密钥只显示这一次，请妥善保存。/ The secret is shown only once.",
        "department_code": body.department_code,
        "roles": sorted(body.roles),
    }


@router.get("/clients", summary="客户端列表（部门管理员只见本部门）")
async def list_clients(
    request: Request,
    admin: Admin,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    return await _department_scoped_page(
        request,
        admin,
        table="client",
        filters=filters,
        limit=limit,
        offset=offset,
    )


@router.post("/clients/{client_id}/rotate-secret", summary="轮换客户端密钥（旧密钥在重叠期内仍有效）")
async def rotate_client_secret(
    request: Request, uow: UoW, client_id: str, body: RotateIn, admin: Admin
) -> dict[str, Any]:
    row = await _client_row(uow, client_id, admin)
    secret = new_secret()
    until = uow.clock.now() + timedelta(hours=body.overlap_hours)
    await store.replace_client_secret(
        uow.conn,
        client_id,
        secret_hash=secret_hash(secret, request.app.state.settings.purpose_keys()),
        previous_valid_until=until,
    )
    _principal_changed(
        uow,
        client_id,
        kind="client",
        department_code=row.department_code,
        roles=list(row.roles),
        status="active",
        change="secret_rotated",
    )
    return {"client_id": client_id, "client_secret": secret, "previous_secret_valid_until": until}


@router.patch("/clients/{client_id}", summary="停用或启用客户端")
async def patch_client(uow: UoW, client_id: str, body: StatusIn, admin: Admin) -> dict[str, Any]:
    row = await _client_row(uow, client_id, admin)
    await store.set_client_status(uow.conn, client_id, body.status)
    await notify_change(uow.conn, "client", client_id)
    _principal_changed(
        uow,
        client_id,
        kind="client",
        department_code=row.department_code,
        roles=list(row.roles),
        status=body.status,
        change="status",
    )
    return {"client_id": client_id, "status": body.status}


# --- signing keys ---------------------------------------------------------------------------------------------


@router.post("/keys/rotate", summary="轮换令牌签名密钥（旧密钥在其签发的令牌全部过期后才退役）")
async def rotate_keys(request: Request, uow: UoW, _admin: PlatformAdmin) -> dict[str, Any]:
    ring = request.app.state.keyring
    previous = [k.kid for k in ring.keys]
    key = await ring.rotate(uow.conn, now=uow.clock.now())
    retiring = [k for k in ring.keys if k.kid != key.kid]
    retire_at = max((k.retires_at for k in retiring if k.retires_at), default=None)
    uow.emit(
        "identity.signing_key.rotated",
        key.kid,
        SigningKeyRotated(kid=key.kid, previous_kids=previous, previous_retire_at=retire_at),
    )
    return {
        "kid": key.kid,
        "published": [k["kid"] for k in ring.jwks()["keys"]],
        "previous_retire_at": retire_at,
    }
