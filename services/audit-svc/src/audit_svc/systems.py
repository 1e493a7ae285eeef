"""The register of departments' information systems (政务信息系统): whether each is integrated and connected to
the platform, which gives Xiangyang's metrics (plan III.5: systems integrated, shared items, collaborative
applications, connectivity rate, key tasks' progress), and Zhonglou's deadline for legacy systems to connect
(000 Art.11, the profile's legacy_systems_connect_by) — a legacy system not connected after it is a
violation (legacy_not_connected)."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.calendar_store import CalendarService
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import Conflict, Forbidden, NotFound
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid

from audit_svc import events, notices
from audit_svc.domain import SYSTEM_STATUS_LABELS, describe_violation, legacy_overdue, rate

_COLUMNS = (
    "id::text AS id, department_code, name, legacy, status, connected_on, collaborative_apps, updated_by, updated_at"
)


def _shape(row: Any, profile: Profile, today: date) -> dict[str, Any]:
    d = dict(row._mapping)
    d["status_label"] = SYSTEM_STATUS_LABELS[d["status"]]
    d["connect_by"] = profile.legacy_systems_connect_by if d["legacy"] else None
    d["overdue"] = legacy_overdue(profile, legacy=d["legacy"], status=d["status"], today=today)
    return d


def _own(principal: Principal, department: str) -> None:
    if not principal.has("platform_admin") and principal.department != department:
        raise Forbidden(
            "只能登记本部门的信息系统。",
            "You may register only your own department's systems.",
            code="not_your_department",
        )


async def save(
    uow: UnitOfWork,
    principal: Principal,
    profile: Profile,
    *,
    system_id: str | None,
    department: str,
    name: str,
    legacy: bool,
    status: str,
    connected_on: date | None,
    collaborative_apps: int,
) -> dict[str, Any]:
    """Register a system (system_id None) or change one; a department's systems have distinct names."""
    _own(principal, department)
    if system_id is not None:
        current = await get(uow, profile, system_id)
        _own(principal, current["department_code"])
        department = current["department_code"]
    same_name = (
        await uow.execute(
            text(
                "SELECT id::text FROM department_system WHERE department_code = :d AND name = :n "
                "AND (CAST(:id AS uuid) IS NULL OR id <> CAST(:id AS uuid))"
            ),
            {"d": department, "n": name, "id": system_id},
        )
    ).scalar()
    if same_name is not None:
        raise Conflict(
            "本部门已登记同名信息系统，请修改该系统的登记，或使用其他名称。",
            "Your department already has a system of this name; change that one or choose another name.",
            code="system_exists",
            details={"system_id": same_name, "name": name},
        )
    if status == "connected" and connected_on is None:
        connected_on = china_date(uow.clock)
    connected = connected_on if status == "connected" else None
    values: dict[str, Any] = {
        "id": system_id or str(uuid.uuid4()),
        "d": department,
        "n": name,
        "l": legacy,
        "s": status,
        "on": connected,
        "apps": collaborative_apps,
        "by": principal.subject,
        "at": uow.clock.now(),
    }
    row = (
        await uow.execute(
            text(
                "INSERT INTO department_system (id, department_code, name, legacy, status, connected_on, "
                "collaborative_apps, updated_by, updated_at) VALUES (CAST(:id AS uuid), :d, :n, :l, :s, :on, :apps, "
                ":by, :at) ON CONFLICT (id) DO UPDATE SET name = excluded.name, legacy = excluded.legacy, "
                "status = excluded.status, connected_on = excluded.connected_on, "
                "collaborative_apps = excluded.collaborative_apps, updated_by = excluded.updated_by, "
                "updated_at = excluded.updated_at RETURNING id::text AS id"
            ),
            values,
        )
    ).one()
    uow.emit(
        events.SYSTEM_CHANGED,
        row.id,
        events.SystemChanged(
            system_id=row.id,
            department_code=department,
            name=name,
            legacy=legacy,
            status=status,
            connected_on=connected,
            actor=principal.subject,
        ),
    )
    return await get(uow, profile, row.id)


async def get(uow: UnitOfWork, profile: Profile, system_id: str) -> dict[str, Any]:
    if not is_uuid(system_id):
        raise NotFound("信息系统不存在。", "No such system.")
    row = (
        await uow.execute(
            text(f"SELECT {_COLUMNS} FROM department_system WHERE id = CAST(:id AS uuid)"), {"id": system_id}
        )
    ).first()
    if row is None:
        raise NotFound("信息系统不存在。", "No such system.")
    return _shape(row, profile, china_date(uow.clock))


async def listing(
    uow: UnitOfWork, profile: Profile, *, department: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where, params = ("WHERE department_code = :d", {"d": department}) if department else ("", {})
    total = (await uow.execute(text(f"SELECT count(*) FROM department_system {where}"), params)).scalar_one()
    rows = await uow.execute(
        text(f"SELECT {_COLUMNS} FROM department_system {where} ORDER BY department_code, name LIMIT :l OFFSET :o"),
        {**params, "l": limit, "o": offset},
    )
    today = china_date(uow.clock)
    return [_shape(r, profile, today) for r in rows], int(total)


async def flag_unconnected(uow: UnitOfWork, calendar: CalendarService, profile: Profile) -> int:
    """The job: a notice per legacy system still not connected after the profile's deadline."""
    deadline = profile.legacy_systems_connect_by
    if deadline is None or china_date(uow.clock) <= deadline:
        return 0
    rows = await uow.execute(
        text(
            "SELECT id::text AS id, department_code, name FROM department_system "
            "WHERE legacy AND status IN ('planned', 'integrated')"
        )
    )
    opened = 0
    for r in rows.all():
        notice = await notices.open_notice(
            uow,
            calendar,
            department=r.department_code,
            violation="legacy_not_connected",
            reference=f"system:{r.id}",
            description=describe_violation("legacy_not_connected", {"system": r.name, "connect_by": deadline}),
            profile=profile,
        )
        opened += notice is not None
    return opened


async def metrics(uow: UnitOfWork, profile: Profile, *, department: str | None) -> dict[str, Any]:
    """Xiangyang's integration metrics, per department and in total (002 plan III.5)."""
    scope = " AND department_code = :d" if department else ""
    params = {"d": department}
    per: dict[str, dict[str, Any]] = {}

    def entry(code: str) -> dict[str, Any]:
        return per.setdefault(
            code,
            {
                "department_code": code,
                "systems": 0,
                "systems_integrated": 0,
                "systems_connected": 0,
                "legacy_overdue": 0,
                "collaborative_applications": 0,
                "shared_resources": 0,
                "shared_items": 0,
                "key_tasks": [],
            },
        )

    today = china_date(uow.clock)
    for r in await uow.execute(
        text(
            f"SELECT department_code, legacy, status, collaborative_apps FROM department_system WHERE status <> 'retired'{scope}"
        ),
        params,
    ):
        e = entry(r.department_code)
        e["systems"] += 1
        e["systems_integrated"] += r.status in ("integrated", "connected")
        e["systems_connected"] += r.status == "connected"
        e["legacy_overdue"] += legacy_overdue(profile, legacy=r.legacy, status=r.status, today=today)
        e["collaborative_applications"] += r.collaborative_apps
    # Shared resources and items: as each resource was last published.
    for r in await uow.execute(
        text(
            "SELECT department_code, count(*) AS resources, sum(items) AS items FROM ("
            "SELECT DISTINCT ON (reference) department, reference, type, "
            "jsonb_array_length(coalesce(data->'published'->'data_items', '[]'::jsonb)) AS items "
            "FROM supervision_fact WHERE kind IN ('resource_published', 'resource_updated') "
            "ORDER BY reference, occurred_at DESC) latest (department_code, reference, type, items) "
            f"WHERE true{scope} GROUP BY department_code"
        ),
        params,
    ):
        e = entry(r.department_code)
        e["shared_resources"] = int(r.resources)
        e["shared_items"] = int(r.items or 0)
    for r in await uow.execute(
        text(
            "SELECT DISTINCT ON (department_code) department_code, year, month, key_tasks FROM department_report "
            f"WHERE kind = 'monthly'{scope} ORDER BY department_code, year DESC, month DESC"
        ),
        params,
    ):
        tasks = r.key_tasks if not isinstance(r.key_tasks, str) else json.loads(r.key_tasks)
        entry(r.department_code)["key_tasks"] = [{**t, "reported": f"{r.year}年{r.month}月"} for t in tasks]
    for e in per.values():
        e["connectivity_rate"] = rate(e["systems_connected"], e["systems"])
    totals = {
        k: sum(e[k] for e in per.values())
        for k in (
            "systems",
            "systems_integrated",
            "systems_connected",
            "legacy_overdue",
            "collaborative_applications",
            "shared_resources",
            "shared_items",
        )
    }
    totals["connectivity_rate"] = rate(totals["systems_connected"], totals["systems"])
    tasks = [t for e in per.values() for t in e["key_tasks"]]
    totals["key_tasks"] = len(tasks)
    totals["key_tasks_average_progress"] = (
        round(sum(float(t.get("progress", 0)) for t in tasks) / len(tasks), 1) if tasks else None
    )
    return {
        "departments": sorted(per.values(), key=lambda e: e["department_code"]),
        "totals": totals,
        "legacy_systems_connect_by": profile.legacy_systems_connect_by,
    }
