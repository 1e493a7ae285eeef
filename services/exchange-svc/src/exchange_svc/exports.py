"""Bulk download (批量下载): a streamed CSV or JSON-lines export of what the grant covers, resumable, traceable.

Every exported row carries the export's fingerprint (a keyed hash of its id) in a `_wm` column, so a leaked file,
or any piece of it, names the export it came from (`trace`). Progress is kept per page; each page served is an
exchange.access event with that page's hashed subjects; the end of the stream completes the export.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import Database, UnitOfWork
from govshare_common.errors import NotFound, ValidationFailed
from govshare_common.identifiers import hash_identifier
from govshare_common.record_ids import is_uuid

from exchange_svc.domain.access import Decision, shaper
from exchange_svc.domain.resources import HostedResource
from exchange_svc.events import EXPORT_COMPLETED, EXPORT_CREATED, ExportCompleted, ExportCreated
from exchange_svc.guard import authorize, emit_access
from exchange_svc.ingest import driver
from exchange_svc.queries import subject_shown
from exchange_svc.sealing import Sealer, dumps

PAGE = 1000
WATERMARK = "_wm"
FINGERPRINT = re.compile(rb"gx[0-9a-f]{22}")


def fingerprint(export_id: str, key: bytes) -> str:
    return "gx" + hash_identifier(f"export:{export_id}", key=key)[:22]


async def create(
    uow: UnitOfWork,
    principal: Principal,
    *,
    code: str,
    purpose: str | None,
    fmt: str,
    hash_key: bytes,
    via_peer: str | None = None,
    export_id: str | None = None,
) -> dict[str, Any]:
    """`via_peer`: a peer platform exports for one of its departments, by the grant it holds here through that
    peer; `export_id` (derived from its idempotency key) makes its retry answer the export it started."""
    _, decision = await authorize(uow, principal, code, purpose, via_peer=via_peer)
    if export_id is not None:
        made = (await uow.execute(text("SELECT * FROM export WHERE id = :id"), {"id": export_id})).one_or_none()
        if made is not None and made.department_code == principal.department:
            return {
                "id": export_id,
                "resource_code": made.resource_code,
                "format": made.format,
                "total_rows": made.total_rows,
                "status": made.status,
                "fingerprint": made.fingerprint,
            }
    export_id = export_id or str(uuid.uuid4())
    total = (await uow.execute(text("SELECT count(*) FROM record WHERE resource_code = :c"), {"c": code})).scalar_one()
    mark = fingerprint(export_id, hash_key)
    await uow.execute(
        text(
            "INSERT INTO export (id, resource_code, department_code, principal, grant_id, purpose, format, fingerprint, "
            "total_rows, status, created_at) VALUES (:id, :c, :d, :p, :g, :purpose, :f, :fp, :n, 'created', :at)"
        ),
        {
            "id": export_id,
            "c": code,
            "d": principal.department,
            "p": principal.subject,
            "g": decision.grant_id,
            "purpose": purpose or "provider",
            "f": fmt,
            "fp": mark,
            "n": total,
            "at": uow.clock.now(),
        },
    )
    uow.emit(
        EXPORT_CREATED,
        export_id,
        ExportCreated(
            export_id=export_id,
            department_code=principal.department or "",
            resource_code=code,
            total_rows=total,
            format=fmt,
        ),
    )
    return {
        "id": export_id,
        "resource_code": code,
        "format": fmt,
        "total_rows": total,
        "status": "created",
        "fingerprint": mark,
    }


async def owned(uow: UnitOfWork, principal: Principal, export_id: str) -> Any:
    if not is_uuid(export_id):
        raise NotFound("导出任务不存在。", "No such export.")
    row = (await uow.execute(text("SELECT * FROM export WHERE id = :id"), {"id": export_id})).one_or_none()
    if row is None or (row.department_code != principal.department and not principal.has("platform_admin")):
        raise NotFound("导出任务不存在。", "No such export.")
    return row


def view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "resource_code": row.resource_code,
        "department_code": row.department_code,
        "principal": row.principal,
        "purpose": row.purpose,
        "format": row.format,
        "total_rows": row.total_rows,
        "rows_sent": row.rows_sent,
        "progress": round(row.rows_sent / row.total_rows, 4) if row.total_rows else 1.0,
        "status": row.status,
        "created_at": row.created_at,
        "completed_at": row.completed_at,
    }


async def prepare_download(
    uow: UnitOfWork,
    principal: Principal,
    *,
    code: str,
    export_id: str,
    purpose: str | None,
    offset: int,
    via_peer: str | None = None,
) -> tuple[HostedResource, Decision, Any]:
    row = await owned(uow, principal, export_id)
    # A peer's export is downloaded only through that peer, a department's here only here.
    made_by_peer = row.principal.startswith(f"peer:{via_peer}:" if via_peer else "peer:")
    if row.resource_code != code or row.department_code != principal.department or made_by_peer != bool(via_peer):
        raise NotFound("导出任务不存在。", "No such export.")
    if offset > row.total_rows:
        raise ValidationFailed("续传位置超出导出范围。", "The resume offset is past the export.", code="bad_cursor")
    resource, decision = await authorize(uow, principal, code, None if purpose is None else purpose, via_peer=via_peer)
    return resource, decision, row


async def stream(
    db: Database,
    principal: Principal,
    *,
    resource: HostedResource,
    decision: Decision,
    export: Any,
    offset: int,
    hash_key: bytes,
    sealer: Sealer,
) -> AsyncIterator[bytes]:
    """Rows in stored record-key order from `offset` (rows already received), a page per transaction."""
    sent = offset
    after: str | None = None  # the last record key sent: each page after the first starts there (not OFFSET,
    # which reads every row before it again: quadratic in the size of the library)
    while True:
        async with db.unit_of_work() as uow:
            served = await page(
                uow,
                principal,
                resource=resource,
                decision=decision,
                export=export,
                sent=sent,
                after=after,
                hash_key=hash_key,
                sealer=sealer,
            )
        sent, after = served.sent, served.last_key
        if served.content:
            yield served.content
        if served.done:
            return


@dataclass(frozen=True)
class Page:
    content: bytes
    rows: int
    sent: int
    done: bool
    last_key: str | None
    subjects: list[str | None]


async def page(
    uow: UnitOfWork,
    principal: Principal,
    *,
    resource: HostedResource,
    decision: Decision,
    export: Any,
    sent: int,
    after: str | None,
    hash_key: bytes,
    sealer: Sealer,
) -> Page:
    """One page of the export after `sent` rows (after record key `after` when known), its access and progress
    written in `uow`; `subjects` are the rows' subjects as the grant shows them."""
    seal = sealer.for_resource(resource)
    columns = list(decision.items)
    fmt = export.format
    out = [_csv_line([*columns, WATERMARK])] if fmt == "csv" and sent == 0 else []
    shaped = shaper(resource, decision)
    # The stored JSON as text, parsed by orjson as the row is opened (not once by the driver's json and copied
    # again); the page through the driver's connection, in the unit of work's transaction.
    pg = await driver(uow)
    if after is None:
        rows = await pg.fetch(
            "SELECT record_key, subject, data::text AS data FROM record WHERE resource_code = $1 "
            "ORDER BY record_key LIMIT $2 OFFSET $3",
            resource.code,
            PAGE,
            sent,
        )
    else:
        rows = await pg.fetch(
            "SELECT record_key, subject, data::text AS data FROM record WHERE resource_code = $1 "
            "AND record_key > $2 ORDER BY record_key LIMIT $3",
            resource.code,
            after,
            PAGE,
        )
    for r in rows:
        data = shaped(seal.open(r["data"]))
        if fmt == "csv":
            out.append(_csv_line([_cell(data.get(c)) for c in columns] + [export.fingerprint]))
        else:
            out.append(dumps({**data, WATERMARK: export.fingerprint}) + b"\n")
    sent += len(rows)
    done = len(rows) < PAGE or sent >= export.total_rows
    subjects = [seal.open_subject(r["subject"]) for r in rows]
    if rows:
        emit_access(
            uow,
            kind="export",
            principal=principal,
            resource=resource,
            decision=decision,
            purpose=export.purpose,
            rows=len(rows),
            subjects=subjects,
            hash_key=hash_key,
        )
    await _progress(uow, export, sent, done)
    return Page(
        content=b"".join(out),
        rows=len(rows),
        sent=sent,
        done=done,
        last_key=rows[-1]["record_key"] if rows else after,
        subjects=[subject_shown(resource, s, decision) for s in subjects],
    )


async def _progress(uow: UnitOfWork, export: Any, sent: int, done: bool) -> None:
    now = uow.clock.now()
    status = "completed" if done else "running"
    current = (
        await uow.execute(text("SELECT status FROM export WHERE id = :id FOR UPDATE"), {"id": export.id})
    ).scalar_one()
    await uow.execute(
        text(
            "UPDATE export SET rows_sent = greatest(rows_sent, :sent), status = CASE WHEN status = 'completed' "
            "THEN status ELSE :status END, completed_at = CASE WHEN :done AND completed_at IS NULL THEN :at "
            "ELSE completed_at END WHERE id = :id"
        ),
        {"sent": sent, "status": status, "done": done, "at": now, "id": export.id},
    )
    if done and current != "completed":
        uow.emit(
            EXPORT_COMPLETED,
            str(export.id),
            ExportCompleted(
                export_id=str(export.id),
                department_code=export.department_code,
                resource_code=export.resource_code,
                rows=sent,
                fingerprint=export.fingerprint,
            ),
        )


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _csv_line(values: list[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode()


async def trace(uow: UnitOfWork, content: bytes) -> dict[str, Any]:
    """Which exports a file (or a fragment of one, or a bare fingerprint) came from."""
    found = sorted({m.decode() for m in FINGERPRINT.findall(content)})
    if not found:
        raise ValidationFailed(
            "内容中没有平台导出水印。", "The content carries no export fingerprint.", code="no_fingerprint"
        )
    rows = await uow.execute(text("SELECT * FROM export WHERE fingerprint = ANY(:f) ORDER BY created_at"), {"f": found})
    items = [view(r) | {"fingerprint": r.fingerprint} for r in rows]
    # A department's cross-level export carries the owner platform's watermark; this platform knows whose it was.
    elsewhere = await uow.execute(
        text("SELECT * FROM cross_level_export WHERE fingerprint = ANY(:f) ORDER BY created_at"), {"f": found}
    )
    items += [view(r) | {"fingerprint": r.fingerprint, "origin_platform": r.origin_platform} for r in elsewhere]
    return {"items": items, "total": len(items), "limit": len(items), "offset": 0, "fingerprints": found}
