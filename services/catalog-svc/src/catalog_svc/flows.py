"""The catalog's use cases: load what a rule needs, apply the domain, write, and raise the event.

Owns: the draft → submit → return/publish → change → withdraw workflow, catalog imports, update obligations
and IT projects, each as one function run inside the caller's unit of work (so a refusal changes nothing).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from typing import Any

from govshare_common.auth import Principal
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.profiles import Profile
from govshare_common.record_ids import is_uuid
from govshare_common.workdays import WorkingCalendar, recounted_deadline

from catalog_svc import domain, findings, search, spreadsheet, store
from catalog_svc.domain import FieldProblem, ResourceContent, ResourceState, RuleContext
from catalog_svc.events import (
    OBLIGATION_DEADLINE_MOVED,
    OBLIGATION_OVERDUE,
    PUBLISHED,
    RETURNED,
    SUBMITTED,
    UPDATED,
    WITHDRAWN,
    FieldChange,
    ObligationDeadlineMoved,
    ObligationOverdue,
    ResourceEvent,
    ResourcePublished,
    ResourceReturned,
    ResourceSnapshot,
    ResourceSubmitted,
    ResourceUpdated,
    ResourceWithdrawn,
)
from catalog_svc.federation import feed


def _content_json(content: ResourceContent) -> dict[str, Any]:
    return content.model_dump(mode="json")


async def _state(uow: UnitOfWork, resource_id: str, *, lock: bool = True) -> ResourceState:
    state = await store.resource_state(uow.conn, resource_id, lock=lock)
    if state is None or state.status == "discarded":
        raise domain.Missing("信息资源不存在。", "No such resource.", resource_id=resource_id)
    domain.ensure_local(state)
    return state


async def _version_content(uow: UnitOfWork, resource_id: str, version: int | None) -> dict[str, Any] | None:
    if version is None:
        return None
    row = await store.version_row(uow.conn, resource_id, version)
    return dict(row.content) if row is not None else None


async def rule_context(
    uow: UnitOfWork,
    contents: list[ResourceContent],
    *,
    department: str | None,
    profile: Profile,
    own_code: str | None = None,
    published: dict[str, Any] | None = None,
) -> RuleContext:
    codes = sorted({c for content in contents for c in content.related_codes})
    return RuleContext(
        department=department,
        live_codes=await store.live_codes(uow.conn, codes),
        own_code=own_code,
        published=ResourceContent.model_validate(published) if published else None,
        conditional_needs_policy_basis=profile.conditional_needs_policy_basis,
        # The first-access commitment binds the department to the secrecy rules (003 Art.36); only 非涉密
        # resources are public information resources at all (Art.2), so each registration confirms it.
        secrecy_review_required=profile.first_access_filing_required,
        open_by_default=profile.open_by_default,
    )


# --- drafts -------------------------------------------------------------------------------------------------


async def create_draft(
    uow: UnitOfWork, principal: Principal, content: ResourceContent, *, profile: Profile, reason: str | None
) -> str:
    ctx = await rule_context(uow, [content], department=principal.department, profile=profile)
    domain.require_valid(content, ctx)
    resource_id = str(uuid.uuid4())
    await store.insert_resources(uow.conn, [_new_resource_row(resource_id, content, principal, uow, reason)])
    return resource_id


def _new_resource_row(
    resource_id: str, content: ResourceContent, principal: Principal, uow: UnitOfWork, reason: str | None
) -> dict[str, Any]:
    return {
        "id": resource_id,
        "provider_code": content.provider_code,
        "provider_name": content.provider_name,
        "name": content.name,
        "content": _content_json(content),
        "actor": principal.subject,
        "department": principal.department,
        "now": uow.clock.now(),
        "reason": reason,
    }


async def save_draft(
    uow: UnitOfWork,
    principal: Principal,
    resource_id: str,
    content: ResourceContent,
    *,
    profile: Profile,
    reason: str | None,
) -> int:
    """Replace the working draft, or start a new version of a published resource (which stays live)."""
    state = await _state(uow, resource_id)
    domain.ensure_owner(state, principal.department)
    plan = domain.plan_save(state)
    published = await _version_content(uow, resource_id, state.published_version)
    ctx = await rule_context(
        uow,
        [content],
        department=principal.department,
        profile=profile,
        own_code=state.code,
        published=published,
    )
    domain.require_valid(content, ctx)
    new = _content_json(content)
    now = uow.clock.now()
    changes = domain.diff(published, new) if published is not None else []
    if plan.new_version:
        await store.insert_version(
            uow.conn,
            resource_id=resource_id,
            version=plan.version,
            content=new,
            reason=reason,
            diff=changes,
            actor=principal.subject,
            now=now,
        )
        edit = domain.diff(published, new)
        action = "new_version"
    else:
        before = await _version_content(uow, resource_id, plan.version)
        edit = domain.diff(before, new)
        await store.update_draft(
            uow.conn,
            resource_id=resource_id,
            version=plan.version,
            content=new,
            reason=reason,
            diff=changes,
            actor=principal.subject,
            now=now,
        )
        action = "edited"
    await store.set_working_name(uow.conn, resource_id, content.name, content.provider_name)
    await store.history(
        uow.conn,
        resource_id=resource_id,
        version=plan.version,
        action=action,
        actor=principal.subject,
        department=principal.department,
        now=now,
        note=reason,
        diff=edit,
    )
    return plan.version


async def discard_draft(uow: UnitOfWork, principal: Principal, resource_id: str) -> None:
    state = await _state(uow, resource_id)
    domain.ensure_owner(state, principal.department)
    version = domain.pending_editable(state)
    await store.discard_pending(uow.conn, state=state, now=uow.clock.now())
    published = await _version_content(uow, resource_id, state.published_version)
    if published is not None:
        await store.set_working_name(uow.conn, resource_id, published["name"], published["provider_name"])
    await store.history(
        uow.conn,
        resource_id=resource_id,
        version=version,
        action="discarded",
        actor=principal.subject,
        department=principal.department,
        now=uow.clock.now(),
    )


# --- review -------------------------------------------------------------------------------------------------


def _snapshot(
    resource_id: str, content: dict[str, Any], *, code: str | None, version: int, publish_date: Any = None
) -> ResourceSnapshot:
    return ResourceSnapshot(id=resource_id, code=code, version=version, publish_date=publish_date, **content)


async def _record_step(
    uow: UnitOfWork,
    principal: Principal,
    *,
    action: str,
    note: str | None,
    now: Any,
    event_type: str,
    event: type[ResourceEvent],
    resource_id: str,
    version: int,
    code: str | None,
    provider_code: str,
    provider_name: str,
    **fields: Any,
) -> None:
    """Every workflow step leaves a history row and announces itself with the resource's common fields."""
    await store.history(
        uow.conn,
        resource_id=resource_id,
        version=version,
        action=action,
        actor=principal.subject,
        department=principal.department,
        now=now,
        note=note,
    )
    uow.emit(
        event_type,
        resource_id,
        event(
            resource_id=resource_id,
            code=code,
            version=version,
            provider_code=provider_code,
            provider_name=provider_name,
            actor=principal.subject,
            **fields,
        ),
    )


async def submit(
    uow: UnitOfWork, principal: Principal, resource_id: str, *, profile: Profile, reason: str | None
) -> int:
    state = await _state(uow, resource_id)
    domain.ensure_owner(state, principal.department)
    version = domain.pending_editable(state)
    row = await store.version_row(uow.conn, resource_id, version)
    content = ResourceContent.model_validate(row.content)
    published = await _version_content(uow, resource_id, state.published_version)
    why = (reason or "").strip() or row.change_reason
    if published is not None and not why:
        raise domain.violation(
            [
                FieldProblem(
                    "change_reason",
                    "change_reason_required",
                    "变更已发布的信息资源须说明变更原因。",
                    "A change to a published resource needs its reason.",
                )
            ]
        )
    # Related resources may have been withdrawn since the draft was saved.
    ctx = await rule_context(
        uow,
        [content],
        department=principal.department,
        profile=profile,
        own_code=state.code,
        published=published,
    )
    domain.require_valid(content, ctx)
    now = uow.clock.now()
    await store.mark_submitted(uow.conn, resource_id, version, actor=principal.subject, now=now, reason=why or None)
    await store.fulfil_obligations(
        uow.conn,
        department=state.provider_code,
        resource_id=resource_id,
        now=now,
        today=china_date(uow.clock),
    )
    current = row.content
    live = await store.published_snapshot(uow.conn, resource_id)
    await _record_step(
        uow,
        principal,
        action="submitted",
        note=why or None,
        now=now,
        event_type=SUBMITTED,
        event=ResourceSubmitted,
        resource_id=resource_id,
        version=version,
        code=state.code,
        provider_code=content.provider_code,
        provider_name=content.provider_name,
        change_reason=why or None,
        submitted=_snapshot(resource_id, current, code=state.code, version=version),
        published=ResourceSnapshot.model_validate(live) if live else None,
        changes=[FieldChange(**c) for c in domain.diff(published, current)] if published else [],
    )
    return version


async def return_for_changes(uow: UnitOfWork, principal: Principal, resource_id: str, *, comment: str) -> int:
    state = await _state(uow, resource_id)
    version = domain.pending_under_review(state)
    content = await _version_content(uow, resource_id, version)
    assert content is not None
    now = uow.clock.now()
    await store.mark_returned(uow.conn, resource_id, version, actor=principal.subject, now=now, comment=comment)
    await _record_step(
        uow,
        principal,
        action="returned",
        note=comment,
        now=now,
        event_type=RETURNED,
        event=ResourceReturned,
        resource_id=resource_id,
        version=version,
        code=state.code,
        provider_code=content["provider_code"],
        provider_name=content["provider_name"],
        comment=comment,
        submitted=_snapshot(resource_id, content, code=state.code, version=version),
    )
    return version


async def publish(
    uow: UnitOfWork, principal: Principal, resource_id: str, *, profile: Profile, comment: str | None
) -> ResourceSnapshot:
    """Approve the version under review: it becomes the live one (the platform office's confirmation)."""
    state = await _state(uow, resource_id)
    version = domain.pending_under_review(state)
    row = await store.version_row(uow.conn, resource_id, version)
    content = ResourceContent.model_validate(row.content)
    published = await _version_content(uow, resource_id, state.published_version)
    ctx = await rule_context(
        uow,
        [content],
        department=content.provider_code,
        profile=profile,
        own_code=state.code,
        published=published,
    )
    domain.require_valid(content, ctx)
    code = state.code or domain.resource_code(
        content.classification_code(), await store.next_sequence(uow.conn, content.classification_code())
    )
    today = china_date(uow.clock)
    now = uow.clock.now()
    snapshot = _snapshot(resource_id, row.content, code=code, version=version, publish_date=today)
    document = await index_document(content)
    await store.mark_published(
        uow.conn,
        resource_id=resource_id,
        version=version,
        previous=state.published_version,
        code=code,
        content=row.content,
        actor=principal.subject,
        now=now,
        today=today,
        comment=comment,
    )
    await store.upsert_published(
        uow.conn,
        [store.published_row(snapshot.model_dump(mode="json"), document)],
    )
    await search.index_postings(uow.conn, [resource_id])
    # At the very end of the transaction: the feed's numbering lock is then held only to the commit.
    fed = snapshot.model_dump(mode="json")
    uow.before_commit(lambda: feed.record_published(uow.conn, fed, now=now))
    step: dict[str, Any] = {
        "action": "published",
        "note": comment,
        "now": now,
        "resource_id": resource_id,
        "version": version,
        "code": code,
        "provider_code": content.provider_code,
        "provider_name": content.provider_name,
        "published": snapshot,
    }
    if published is None:
        await _record_step(uow, principal, event_type=PUBLISHED, event=ResourcePublished, **step)
    else:
        assert state.published_version is not None
        await _record_step(
            uow,
            principal,
            event_type=UPDATED,
            event=ResourceUpdated,
            previous_version=state.published_version,
            change_reason=row.change_reason,
            changes=[FieldChange(**c) for c in domain.diff(published, row.content)],
            **step,
        )
    await findings.check_repeated_collection(uow, resource_id=resource_id, code=code, version=version, content=content)
    return snapshot


async def index_document(content: ResourceContent) -> str:
    if not search.segmenter.loaded:
        # The first segmentation loads the dictionary (~0.5 s): not on the event loop.
        await asyncio.to_thread(search.segmenter.index_tokens, "预热")
    return search.document(content.name, content.summary, [i.label for i in content.data_items])


async def withdraw(uow: UnitOfWork, principal: Principal, resource_id: str, *, reason: str) -> None:
    state = await _state(uow, resource_id)
    if not principal.has("platform_admin"):
        domain.ensure_owner(state, principal.department)
    version = domain.withdrawable(state)
    live = await store.published_snapshot(uow.conn, resource_id)
    assert live is not None
    now = uow.clock.now()
    await store.mark_withdrawn(
        uow.conn,
        resource_id=resource_id,
        published=version,
        pending=state.pending_version,
        actor=principal.subject,
        now=now,
        reason=reason,
    )
    uow.before_commit(lambda: feed.record_withdrawn(uow.conn, live, now=now))
    await _record_step(
        uow,
        principal,
        action="withdrawn",
        note=reason,
        now=now,
        event_type=WITHDRAWN,
        event=ResourceWithdrawn,
        resource_id=resource_id,
        version=version,
        code=state.code,
        provider_code=live["provider_code"],
        provider_name=live["provider_name"],
        reason=reason,
        published=ResourceSnapshot.model_validate(live),
    )


# --- spreadsheet imports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedResource:
    """One resource read from a sheet: its content and, for an update, the existing resource's code."""

    content: ResourceContent
    code: str | None


async def import_check(
    uow: UnitOfWork, principal: Principal, resources: list[ImportedResource], *, profile: Profile
) -> tuple[list[list[FieldProblem]], dict[str, ResourceState]]:
    """Every rule problem of every imported resource (by position), and the existing resources updated."""
    codes = [r.code for r in resources if r.code]
    existing = await store.resources_by_code(uow.conn, codes) if codes else {}
    ctx = await rule_context(uow, [r.content for r in resources], department=principal.department, profile=profile)
    problems: list[list[FieldProblem]] = []
    for r in resources:
        state = existing.get(r.code) if r.code else None
        rule_ctx = ctx
        if state is not None and state.published_version is not None:
            live = await _version_content(uow, state.id, state.published_version)
            rule_ctx = replace(ctx, own_code=state.code, published=ResourceContent.model_validate(live))
        p = domain.check_resource(r.content, rule_ctx)
        if r.code:
            if state is None or state.status in ("withdrawn", "discarded"):
                p.append(
                    FieldProblem(
                        "code",
                        "unknown_code",
                        f"信息资源代码 {r.code} 不存在或已撤销；新增资源请留空。",
                        f"Resource code {r.code} does not exist or is withdrawn; leave it blank for a new one.",
                    )
                )
            elif state.provider_code != principal.department:
                p.append(
                    FieldProblem("code", "not_own_department", "该信息资源属于其他部门。", "Another department's.")
                )
            elif state.pending_status == "submitted":
                p.append(
                    FieldProblem("code", "under_review", "该信息资源有版本正在审核中。", "A version is under review.")
                )
        problems.append(p)
    return problems, existing


async def import_resources(
    uow: UnitOfWork,
    principal: Principal,
    resources: list[ImportedResource],
    existing: dict[str, ResourceState],
    *,
    profile: Profile,
    reason: str,
) -> list[dict[str, Any]]:
    """Write checked resources: new ones as drafts in bulk, updates as new draft versions."""
    new_rows, out = [], []
    for r in resources:
        if r.code:
            state = existing[r.code]
            version = await save_draft(uow, principal, state.id, r.content, profile=profile, reason=reason)
            out.append({"id": state.id, "code": r.code, "name": r.content.name, "version": version, "new": False})
        else:
            resource_id = str(uuid.uuid4())
            new_rows.append(_new_resource_row(resource_id, r.content, principal, uow, reason))
            out.append({"id": resource_id, "code": None, "name": r.content.name, "version": 1, "new": True})
    await store.insert_resources(uow.conn, new_rows)
    return out


async def import_workbook(
    uow: UnitOfWork, principal: Principal, data: bytes, *, profile: Profile, filename: str | None
) -> list[dict[str, Any]]:
    """A department's .xlsx catalog becomes drafts — all of it, or nothing and every problem at once."""
    parsed = await asyncio.to_thread(_read_sheet, data, principal.department)
    readable = [r for r in parsed.resources if r.content is not None]
    imported = [ImportedResource(r.content, r.code) for r in readable if r.content is not None]
    problems, existing = await import_check(uow, principal, imported, profile=profile)
    errors = list(parsed.errors)
    for resource, found in zip(readable, problems, strict=True):
        errors.extend(parsed.locate(resource, p.field, p.code, p.zh, p.en) for p in found)
    seen_codes: dict[str, int] = {}
    for resource in parsed.resources:
        if resource.code and resource.code in seen_codes:
            errors.append(
                parsed.locate(
                    resource,
                    "code",
                    "duplicate",
                    f"信息资源代码 {resource.code} 在第 {seen_codes[resource.code]} 行已出现。",
                    f"Resource code {resource.code} already appears on row {seen_codes[resource.code]}.",
                )
            )
        elif resource.code:
            seen_codes[resource.code] = resource.first_row
    if not parsed.resources and not errors:
        raise domain.violation([FieldProblem("file", "empty", "表格中没有信息资源。", "The sheet holds no resources.")])
    spreadsheet.refuse_if_errors(errors)
    return await import_resources(
        uow, principal, imported, existing, profile=profile, reason=f"表格导入：{filename or '未命名文件'}"
    )


def _read_sheet(data: bytes, department: str | None) -> spreadsheet.ParsedSheet:
    parsed = spreadsheet.read(data, department=department)
    spreadsheet.check_contents(parsed)
    return parsed


# --- obligations --------------------------------------------------------------------------------------------


async def record_obligation(
    uow: UnitOfWork,
    *,
    recorded_by: str,
    calendar: Any,
    profile: Profile,
    department_code: str,
    department_name: str | None,
    reason: str,
    description: str,
    resource_ids: list[str],
) -> dict[str, Any]:
    await _department_resources(uow, department_code, resource_ids)
    today = china_date(uow.clock)
    deadline = await calendar.add_working_days(
        uow, today, profile.catalog_update_wd, purpose=f"catalog update obligation of {department_code}"
    )
    row = {
        "id": str(uuid.uuid4()),
        "department_code": department_code,
        "department_name": department_name,
        "reason": reason,
        "description": description,
        "recorded_by": recorded_by,
        "recorded_at": uow.clock.now(),
        "recorded_on": today,
        "working_days": profile.catalog_update_wd,
        "due_on": deadline.due,
        "due_unknown_years": sorted(deadline.unknown_years),
        "resource_ids": list(dict.fromkeys(resource_ids)),
    }
    await store.insert_obligation(uow.conn, row)
    result = await store.obligation(uow.conn, row["id"])
    assert result is not None
    return result


async def _department_resources(uow: UnitOfWork, department: str, resource_ids: list[str]) -> None:
    """The resources an obligation names are the department's own catalog entries."""
    states = await store.resource_states(uow.conn, [r for r in resource_ids if is_uuid(r)])
    problems = [
        domain.FieldProblem(
            f"resource_ids[{i}]",
            "not_department_resource",
            "该信息资源不存在，或不属于该部门。",
            "No such resource of this department.",
        )
        for i, rid in enumerate(resource_ids)
        if rid not in states or states[rid].provider_code != department
    ]
    if problems:
        raise domain.violation(problems)


async def department_onboarded(
    uow: UnitOfWork, *, calendar: Any, profile: Profile, department_code: str, department_name: str | None
) -> None:
    """A department seen for the first time compiles its catalog within the profile's time (000 Art.9, 001
    Art.10, 002 Art.6, 003 Art.8, 004 Art.9): an obligation naming no resource, settled by its first
    submission, overdue — a violation — when none comes in time."""
    if not await store.first_onboarding(uow.conn, department_code, at=uow.clock.now()):
        return
    await record_obligation(
        uow,
        recorded_by="system",
        calendar=calendar,
        profile=profile,
        department_code=department_code,
        department_name=department_name,
        reason="onboarded",
        description="部门接入平台后，应在规定时限内编制并报送本部门政务信息资源目录。",
        resource_ids=[],
    )


async def recount_obligations(uow: UnitOfWork, before: WorkingCalendar, after: WorkingCalendar, *, year: int) -> int:
    """A year's holidays entered or corrected: each open obligation's due date recounted on the new calendar
    (workdays.recounted_deadline), no longer flagged for the year now known; each move emitted."""
    today = china_date(uow.clock)
    moved = 0
    for row in await store.open_obligations(uow.conn):
        due = row["due_on"]
        new_due = recounted_deadline(before, after, today=today, due=due)
        unknown = sorted(after.add_working_days(row["recorded_on"], row["working_days"]).unknown_years)
        if new_due == due and unknown == sorted(row["due_unknown_years"] or []):
            continue
        await store.move_obligation_due(uow.conn, row["id"], due_on=new_due, unknown_years=unknown)
        if new_due != due:
            uow.emit(
                OBLIGATION_DEADLINE_MOVED,
                row["id"],
                ObligationDeadlineMoved(
                    obligation_id=row["id"],
                    department_code=row["department_code"],
                    previous_due_on=due,
                    due_on=new_due,
                    calendar_year=year,
                ),
            )
            moved += 1
    return moved


async def mark_overdue_obligations(uow: UnitOfWork) -> None:
    """The periodic job: obligations past their due date become overdue, each announced once."""
    for row in await store.newly_overdue(uow.conn, today=china_date(uow.clock)):
        uow.emit(
            OBLIGATION_OVERDUE,
            row["id"],
            ObligationOverdue(
                obligation_id=row["id"],
                department_code=row["department_code"],
                department_name=row["department_name"],
                reason=row["reason"],
                description=row["description"],
                recorded_on=row["recorded_on"],
                working_days=row["working_days"],
                due_on=row["due_on"],
                overdue_since=row["overdue_since"],
            ),
        )


# --- IT projects --------------------------------------------------------------------------------------------


async def _own_resources(uow: UnitOfWork, principal: Principal, resource_ids: list[str]) -> None:
    states = await store.resource_states(uow.conn, [r for r in resource_ids if is_uuid(r)])
    problems = []
    for i, rid in enumerate(resource_ids):
        state = states.get(rid)
        if state is None or state.status == "discarded":
            problems.append(
                FieldProblem(f"resource_ids.{i}", "unknown_resource", "信息资源不存在。", "No such resource.")
            )
        elif state.provider_code != principal.department:
            problems.append(
                FieldProblem(
                    f"resource_ids.{i}",
                    "not_own_department",
                    "项目信息资源目录只能登记本部门的信息资源。",
                    "A project registers its own department's resources only.",
                )
            )
    if len(set(resource_ids)) != len(resource_ids):
        problems.append(FieldProblem("resource_ids", "duplicate", "信息资源重复登记。", "A resource is listed twice."))
    if problems:
        raise domain.violation(problems)


async def register_project(
    uow: UnitOfWork, principal: Principal, *, name: str, description: str | None, resource_ids: list[str]
) -> str:
    await _own_resources(uow, principal, resource_ids)
    project_id = str(uuid.uuid4())
    await store.insert_project(
        uow.conn,
        {
            "id": project_id,
            "department_code": principal.department,
            "name": name,
            "description": description,
            "actor": principal.subject,
            "now": uow.clock.now(),
        },
    )
    await store.set_project_resources(uow.conn, project_id, resource_ids)
    return project_id


async def _project(uow: UnitOfWork, project_id: str) -> dict[str, Any]:
    row = await store.project(uow.conn, project_id, lock=True)
    if row is None:
        raise domain.Missing("信息化项目不存在。", "No such project.")
    return row


async def set_project_resources(
    uow: UnitOfWork, principal: Principal, project_id: str, resource_ids: list[str]
) -> None:
    row = await _project(uow, project_id)
    if row["department_code"] != principal.department:
        raise domain.NotOwner("只能维护本部门的信息化项目。", "A department maintains only its own projects.")
    if row["status"] == "accepted":
        raise domain.WorkflowConflict("项目已通过验收，信息资源目录不能再变更。", "The project is already accepted.")
    await _own_resources(uow, principal, resource_ids)
    await store.set_project_resources(uow.conn, project_id, resource_ids)


async def approve_project(uow: UnitOfWork, principal: Principal, project_id: str) -> None:
    row = await _project(uow, project_id)
    if row["status"] != "registered":
        raise domain.WorkflowConflict("项目已审批。", "The project is already approved.")
    if not await store.project_resources(uow.conn, project_id):
        raise domain.violation(
            [
                FieldProblem(
                    "resource_ids",
                    "project_catalog_missing",
                    "立项审批前须预编项目信息资源目录。",
                    "A project registers its resource catalog before approval.",
                )
            ]
        )
    await store.set_project_status(uow.conn, project_id, "approved", actor=principal.subject, now=uow.clock.now())


async def accept_project(uow: UnitOfWork, principal: Principal, project_id: str) -> None:
    row = await _project(uow, project_id)
    if row["status"] != "approved":
        raise domain.WorkflowConflict(
            "只有已审批、尚未验收的项目可以验收。",
            "Only an approved, not yet accepted project can be accepted.",
        )
    resources = [
        domain.ProjectResource(r["id"], r["name"], r["status"])
        for r in await store.project_resources(uow.conn, project_id)
    ]
    problems = domain.acceptance_problems(resources)
    if problems:
        raise domain.AcceptanceRefused(
            problems,
            project_id=project_id,
            project_name=row["name"],
            department_code=row["department_code"],
            unpublished=tuple(r.name for r in resources if r.status != "published"),
        )
    await store.set_project_status(uow.conn, project_id, "accepted", actor=principal.subject, now=uow.clock.now())
