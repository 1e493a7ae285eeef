"""Accountable people (责任人): each department's head or chief data officer — the first accountable for its
sharing work (000 Art.24; 001 Art.31) — and its resource administrator, filed with the platform office and
kept current (001 Art.31). The register shows who is missing where the profile asks for them; notices are
addressed to the first accountable on file. Each change is kept, with its event, in one unit of work."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import Forbidden
from govshare_common.jurisdictions import profile_named
from govshare_common.profiles import Profile

from audit_svc import events
from audit_svc.domain import PERSON_ROLES, missing_people, required_people

_PERSON = "department_code, role, name, title, contact, updated_by, updated_at"


async def department_profile(uow: UnitOfWork, platform: Profile, department: str) -> Profile:
    """The profile `department` is held to: its hosted jurisdiction's, else the platform's own."""
    found = await uow.execute(text("SELECT profile FROM department WHERE code = :d"), {"d": department})
    return profile_named(found.scalar_one_or_none(), platform)


async def person(uow: UnitOfWork, department: str, role: str) -> dict[str, Any] | None:
    row = (
        await uow.execute(
            text(f"SELECT {_PERSON} FROM accountable_person WHERE department_code = :d AND role = :r"),
            {"d": department, "r": role},
        )
    ).first()
    return dict(row._mapping) if row is not None else None


async def put(
    uow: UnitOfWork,
    principal: Principal,
    *,
    department: str,
    role: str,
    name: str,
    title: str | None,
    contact: str | None,
) -> dict[str, Any]:
    if not principal.has("platform_admin") and principal.department != department:
        raise Forbidden(
            "只能登记本部门的责任人。", "You may file only your own department's people.", code="not_your_department"
        )
    now = uow.clock.now()
    values = {"d": department, "r": role, "n": name, "t": title, "c": contact, "by": principal.subject, "at": now}
    await uow.execute(
        text(
            "INSERT INTO accountable_person (department_code, role, name, title, contact, updated_by, updated_at) "
            "VALUES (:d, :r, :n, :t, :c, :by, :at) ON CONFLICT (department_code, role) DO UPDATE SET "
            "name = excluded.name, title = excluded.title, contact = excluded.contact, "
            "updated_by = excluded.updated_by, updated_at = excluded.updated_at"
        ),
        values,
    )
    await uow.execute(
        text(
            "INSERT INTO accountable_change (department_code, role, name, title, contact, changed_by, changed_at) "
            "VALUES (:d, :r, :n, :t, :c, :by, :at)"
        ),
        values,
    )
    uow.emit(
        events.ACCOUNTABLE_CHANGED,
        f"{department}:{role}",
        events.AccountableChanged(
            department_code=department, role=role, name=name, title=title, actor=principal.subject
        ),
    )
    found = await person(uow, department, role)
    assert found is not None
    return found


async def register(
    uow: UnitOfWork, profile: Profile, *, department: str | None, missing_only: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """Each known department with its people on file and, where its jurisdiction's profile asks for them (a
    hosted jurisdiction's own, else the platform's), who is missing."""
    where, params = ("WHERE code = :d", {"d": department}) if department else ("", {})
    rows = (await uow.execute(text(f"SELECT code, name, profile FROM department {where} ORDER BY code"), params)).all()
    people: dict[str, dict[str, Any]] = {}
    found = await uow.execute(
        text(f"SELECT {_PERSON} FROM accountable_person" + (" WHERE department_code = :d" if department else "")),
        params,
    )
    for p in found:
        people.setdefault(p.department_code, {})[p.role] = {**dict(p._mapping), "role_label": PERSON_ROLES[p.role]}
    entries = []
    for r in rows:
        on_file = people.get(r.code, {})
        rules = profile_named(r.profile, profile)
        missing = missing_people(rules, set(on_file))
        if missing_only and not missing:
            continue
        first = on_file.get(rules.accountable_role)
        entries.append(
            {
                "department_code": r.code,
                "department_name": r.name,
                "profile": rules.name,
                "required_roles": list(required_people(rules)),
                "people": on_file,
                "accountable": first["name"] if first else None,
                "missing": missing,
                "missing_labels": [PERSON_ROLES[m] for m in missing],
                "flagged": bool(missing),
            }
        )
    return entries[offset : offset + limit], len(entries), list(required_people(profile))


async def history(uow: UnitOfWork, department: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    total = (
        await uow.execute(text("SELECT count(*) FROM accountable_change WHERE department_code = :d"), {"d": department})
    ).scalar_one()
    rows = await uow.execute(
        text(
            "SELECT role, name, title, contact, changed_by, changed_at FROM accountable_change "
            "WHERE department_code = :d ORDER BY id DESC LIMIT :l OFFSET :o"
        ),
        {"d": department, "l": limit, "o": offset},
    )
    return [dict(r._mapping) for r in rows], int(total)
