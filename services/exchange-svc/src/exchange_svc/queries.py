"""Online query (联机查询) and record history: reading hosted records under the caller's grant.

Owns: finding records by subject identifier or record key, shaping them to the granted and masked items, marking
values served under an open single-source conflict or an open dispute, and the access event of each query.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import Forbidden, ValidationFailed

from exchange_svc import connectors
from exchange_svc.domain.access import Decision, shape
from exchange_svc.domain.resources import HostedResource
from exchange_svc.guard import authorize, emit_access, require_resource
from exchange_svc.sealing import Sealer

MAX_SUBJECTS = 100


def _data(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def subject_shown(resource: HostedResource, subject: str | None, decision: Any) -> str | None:
    from exchange_svc.domain.access import mask_value

    item = resource.subject_item
    if subject is None or item is None or decision.provider or item.name in decision.unmasked:
        return subject
    return str(mask_value(item, subject))


async def marks(uow: UnitOfWork, code: str, keys: list[str]) -> dict[str, dict[str, str]]:
    """record key -> item -> mark, for values served while a conflict or a dispute about them is open."""
    out: dict[str, dict[str, str]] = {}
    if not keys:
        return out
    rows = await uow.execute(
        text(
            "SELECT record_key, item, 'conflict_pending' AS mark FROM conflict "
            "WHERE resource_code = :c AND state = 'open' AND record_key = ANY(:k) "
            "UNION ALL SELECT record_key, item, 'disputed' FROM dispute "
            "WHERE resource_code = :c AND state IN ('open', 'overdue') AND record_key = ANY(:k)"
        ),
        {"c": code, "k": keys},
    )
    for r in rows:
        out.setdefault(r.record_key, {})[r.item] = r.mark
    return out


async def query(
    uow: UnitOfWork,
    principal: Principal,
    *,
    code: str,
    purpose: str | None,
    subjects: list[str],
    keys: list[str],
    hash_key: bytes,
    sealer: Sealer,
    via_peer: str | None = None,
) -> dict[str, Any]:
    resource, decision = await authorize(uow, principal, code, purpose, via_peer=via_peer)
    subjects = sorted({s.strip().upper() for s in subjects if s.strip()})
    keys = sorted({k.strip() for k in keys if k.strip()})
    if not subjects and not keys:
        raise ValidationFailed(
            "请按身份标识（subject）或记录主键（key）查询。",
            "Query by subject identifier (subject) or record key (key).",
            code="subject_required",
        )
    if len(subjects) + len(keys) > MAX_SUBJECTS:
        raise ValidationFailed(
            f"单次最多查询 {MAX_SUBJECTS} 个对象，大量数据请使用批量下载。",
            f"At most {MAX_SUBJECTS} subjects per query; use bulk download for more.",
            code="too_many_subjects",
        )
    seal = sealer.for_resource(resource)
    answering = await connectors.answering(uow, resource)
    if answering is not None:
        return await _at_source(
            uow, principal, answering, resource, decision, purpose, subjects=subjects, keys=keys, hash_key=hash_key
        )
    rows = (
        await uow.execute(
            text(
                "SELECT record_key, subject, data, version, updated_at FROM record WHERE resource_code = :c "
                "AND (subject = ANY(:s) OR record_key = ANY(:k)) ORDER BY record_key LIMIT 1000"
            ),
            {"c": code, "s": seal.subject_lookups(subjects), "k": seal.key_lookups(keys)},
        )
    ).all()
    marked = await marks(uow, code, [r.record_key for r in rows])
    key_shown = all(k in decision.unmasked for k in resource.key_items)
    items = []
    found: list[tuple[str, str]] = []
    for r in sorted(rows, key=lambda r: seal.open_key(r.record_key)):
        data = shape(seal.open(r.data), resource, decision)
        record_marks = {i: m for i, m in marked.get(r.record_key, {}).items() if i in data}
        plain_key, plain_subject = seal.open_key(r.record_key), seal.open_subject(r.subject)
        found.append((plain_subject, plain_key))  # type: ignore[arg-type]
        items.append(
            {
                "key": plain_key if key_shown else None,
                "subject": subject_shown(resource, plain_subject, decision),
                "data": data,
                "version": r.version,
                "updated_at": r.updated_at,
                "marks": record_marks,
            }
        )
    return _answer(
        uow,
        principal,
        resource,
        decision,
        purpose,
        items=items,
        found=found,
        asked=[*subjects, *keys],
        hash_key=hash_key,
    )


async def _at_source(
    uow: UnitOfWork,
    principal: Principal,
    connector: Any,
    resource: HostedResource,
    decision: Decision,
    purpose: str | None,
    *,
    subjects: list[str],
    keys: list[str],
    hash_key: bytes,
) -> dict[str, Any]:
    """An interface resource answered by its provider's connector from the department database, shaped by the
    same grant decision and masking as hosted records."""
    found = await connectors.ask(connector, resource, subjects=subjects, keys=keys)
    key_shown = all(k in decision.unmasked for k in resource.key_items)
    items = [
        {
            "key": row["key"] if key_shown else None,
            "subject": subject_shown(resource, row["subject"], decision),
            "data": shape(row["data"], resource, decision),
            "version": None,
            "updated_at": None,
            "marks": {},
        }
        for row in found
    ]
    answer = _answer(
        uow,
        principal,
        resource,
        decision,
        purpose,
        items=items,
        found=[(row["subject"], row["key"]) for row in found],
        asked=[*subjects, *keys],
        hash_key=hash_key,
    )
    return {**answer, "answered_by": "connector"}


def _answer(
    uow: UnitOfWork,
    principal: Principal,
    resource: HostedResource,
    decision: Decision,
    purpose: str | None,
    *,
    items: list[dict[str, Any]],
    found: list[tuple[str, str]],
    asked: list[str],
    hash_key: bytes,
) -> dict[str, Any]:
    """An online query's answer, wherever its rows came from: its exchange.access event, and what was served.
    `found` holds each row's (subject, record key)."""
    emit_access(
        uow,
        kind="query",
        principal=principal,
        resource=resource,
        decision=decision,
        purpose=purpose,
        rows=len(items),
        subjects=[subject for subject, _key in found],
        hash_key=hash_key,
    )
    seen = {subject for subject, _key in found} | {key for _subject, key in found}
    return {
        "items": items,
        "total": len(items),
        "limit": 1000,
        "offset": 0,
        "not_found": len([s for s in asked if s not in seen]),
        "items_served": list(decision.items),
        "masked_items": [n for n in decision.items if n not in decision.unmasked],
        "grant_id": decision.grant_id,
    }


async def history(
    uow: UnitOfWork, principal: Principal, *, code: str, key: str, limit: int, offset: int, sealer: Sealer
) -> dict[str, Any]:
    """A record's every change: what, when, from which batch. The provider's (and the platform office's) view."""
    resource = await require_resource(uow, code)
    if principal.department != resource.provider_code and not principal.has("platform_admin"):
        raise Forbidden(
            "只有提供部门和平台管理机构可查看记录的变更历史。",
            "Only the provider and the platform office see a record's history.",
            code="not_own_resource",
        )
    seal = sealer.for_resource(resource)
    params = {"c": code, "k": seal.key_lookups([key]), "limit": limit, "offset": offset}
    total = (
        await uow.execute(
            text("SELECT count(*) FROM record_change WHERE resource_code = :c AND record_key = ANY(:k)"), params
        )
    ).scalar_one()
    rows = await uow.execute(
        text(
            "SELECT seq, op, changed_items, before, after, batch_id, source, provider_code, at FROM record_change "
            "WHERE resource_code = :c AND record_key = ANY(:k) ORDER BY seq LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    items = [
        {
            "seq": r.seq,
            "op": r.op,
            "changed_items": list(r.changed_items),
            "before": seal.open(r.before) if r.before is not None else None,
            "after": seal.open(r.after) if r.after is not None else None,
            "batch_id": r.batch_id,
            "source": r.source,
            "provider_code": r.provider_code,
            "at": r.at,
        }
        for r in rows
    ]
    return {"items": items, "total": total, "limit": limit, "offset": offset}
