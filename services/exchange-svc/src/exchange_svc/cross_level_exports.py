"""Cross-level bulk export (issue 16 item 5): a department's bulk download, at home, of a resource another
platform owns, streamed through page by page.

The owner makes its ordinary export for the peer's department (its grant, its watermark in every row's `_wm`,
its progress and completion) and serves it a page per signed call, checking its grant at each one, so a
revocation there stops the download at the next page. This service passes each page on as it arrives (one page
in memory at a time, never the whole file), keeps the export's progress here for the department (offset-resumable
like the ordinary download: `offset` is the data rows already received), and writes its own `exchange.access`
per page (basis `cross_level`), as the owner writes its own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import Database, UnitOfWork
from govshare_common.errors import AppError, NotFound, ValidationFailed
from govshare_common.peer_client import PeerClient
from govshare_common.record_ids import is_uuid

from exchange_svc import exports
from exchange_svc.events import (
    EXPORT_COMPLETED,
    EXPORT_CREATED,
    ExportCompleted,
    ExportCreated,
)
from exchange_svc.owner_calls import (
    call_owner,
    owner_of,
    peer_principal,
    record_cross_level_access,
    registered_owner,
    subjects_in_clear,
)
from exchange_svc.sealing import Sealer

PEER_EXPORTS_PATH = "/api/v1/exchange/federation/peer-exports"
log = logging.getLogger("govshare.exchange.cross_level_exports")
# The owner's export made for an idempotency key is always the same one, so a retried call makes nothing twice.
_OWNER_IDS = uuid.UUID("3c1b8e4e-6a2d-4f0b-b3f5-0d9e2a7c5b41")


# --- at the consumer's platform ---------------------------------------------------------------------------


async def create(
    uow: UnitOfWork, principal: Principal, client: PeerClient | None, *, code: str, purpose: str | None, fmt: str
) -> dict[str, Any]:
    owner = await owner_of(uow, client, code)
    assert client is not None
    export_id = str(uuid.uuid4())
    made = await call_owner(
        client,
        owner.peer,
        "POST",
        PEER_EXPORTS_PATH,
        idempotency_key=f"export-{export_id}",
        body={
            "resource": owner.origin_code,
            "consumer": principal.department or "",
            "principal": principal.subject,
            "purpose": purpose,
            "format": fmt,
        },
    )
    total = int(made["total_rows"])
    await uow.execute(
        text(
            "INSERT INTO cross_level_export (id, resource_code, origin_platform, origin_export_id, department_code, "
            "principal, purpose, format, fingerprint, total_rows, status, created_at) VALUES (:id, :c, :o, :oid, "
            ":d, :p, :purpose, :f, :fp, :n, 'created', :at)"
        ),
        {
            "id": export_id,
            "c": code,
            "o": owner.division,
            "oid": str(made["id"]),
            "d": principal.department,
            "p": principal.subject,
            "purpose": purpose or "",
            "f": fmt,
            "fp": str(made["fingerprint"]),
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
            origin_platform=owner.division,
        ),
    )
    return {
        "id": export_id,
        "resource_code": code,
        "origin_platform": owner.division,
        "format": fmt,
        "total_rows": total,
        "status": "created",
    }


async def owned(uow: UnitOfWork, principal: Principal, export_id: str) -> Any:
    row = None
    if is_uuid(export_id):
        row = (
            await uow.execute(text("SELECT * FROM cross_level_export WHERE id = :id"), {"id": export_id})
        ).one_or_none()
    if row is None or (row.department_code != principal.department and not principal.has("platform_admin")):
        raise NotFound("导出任务不存在。", "No such export.")
    return row


def view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "resource_code": row.resource_code,
        "origin_platform": row.origin_platform,
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


def _page_at_owner(export: Any, principal: Principal, offset: int) -> str:
    query = urlencode({"consumer": export.department_code, "principal": principal.subject, "offset": offset})
    return f"{PEER_EXPORTS_PATH}/{quote(export.origin_export_id)}/rows?{query}"


async def prepare_download(
    uow: UnitOfWork, principal: Principal, client: PeerClient | None, *, export_id: str, offset: int
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The export, its owner and the first page from `offset`: asked before the answer starts, so a refusal (the
    grant revoked, a bad offset) is an error in the platform's shape, not a cut stream."""
    export = await owned(uow, principal, export_id)
    if export.department_code != principal.department:
        raise NotFound("导出任务不存在。", "No such export.")
    if offset > export.total_rows:
        raise ValidationFailed("续传位置超出导出范围。", "The resume offset is past the export.", code="bad_cursor")
    peer = await registered_owner(uow, client, export.origin_platform)
    assert client is not None
    first = await call_owner(
        client, peer, "GET", _page_at_owner(export, principal, offset), idempotency_key=uuid.uuid4().hex
    )
    return export, peer, first


async def stream(
    db: Database,
    principal: Principal,
    client: PeerClient,
    *,
    export: Any,
    peer: dict[str, Any],
    first: dict[str, Any],
    hash_key: bytes,
) -> AsyncIterator[bytes]:
    """Each owner's page passed on as it arrives, recorded here first. A refusal or an owner away mid-way ends
    the stream short; the department resumes at the rows it has (`offset`)."""
    served = first
    while True:
        async with db.unit_of_work() as uow:
            await _record(uow, principal, export, served, hash_key=hash_key)
        if served["content"]:
            yield str(served["content"]).encode()
        if served["done"]:
            return
        try:
            served = await call_owner(
                client,
                peer,
                "GET",
                _page_at_owner(export, principal, int(served["sent"])),
                idempotency_key=uuid.uuid4().hex,
            )
        except AppError as exc:
            # The answer has begun: it can only end short. What was sent is recorded; the department resumes there.
            log.warning("cross-level export %s ended short at the owner's refusal: %s", export.id, exc.code)
            return


async def _record(
    uow: UnitOfWork, principal: Principal, export: Any, served: dict[str, Any], *, hash_key: bytes
) -> None:
    sent, done, rows = int(served["sent"]), bool(served["done"]), int(served["rows"])
    if rows:
        record_cross_level_access(
            uow,
            principal,
            kind="export",
            resource_code=export.resource_code,
            purpose=export.purpose or None,
            rows=rows,
            subjects=subjects_in_clear(list(served.get("subjects") or [])),
            grant_id=served.get("grant_id"),
            origin=export.origin_platform,
            via=None,
            hash_key=hash_key,
        )
    before = (
        await uow.execute(text("SELECT status FROM cross_level_export WHERE id = :id FOR UPDATE"), {"id": export.id})
    ).scalar_one()
    await uow.execute(
        text(
            "UPDATE cross_level_export SET rows_sent = greatest(rows_sent, :sent), status = CASE WHEN status = "
            "'completed' THEN status WHEN :done THEN 'completed' ELSE 'running' END, completed_at = CASE WHEN :done "
            "AND completed_at IS NULL THEN :at ELSE completed_at END WHERE id = :id"
        ),
        {"sent": sent, "done": done, "at": uow.clock.now(), "id": export.id},
    )
    if done and before != "completed":
        uow.emit(
            EXPORT_COMPLETED,
            str(export.id),
            ExportCompleted(
                export_id=str(export.id),
                department_code=export.department_code,
                resource_code=export.resource_code,
                rows=sent,
                fingerprint=export.fingerprint,
                origin_platform=export.origin_platform,
            ),
        )


# --- at the owner's platform ------------------------------------------------------------------------------


async def answer_create(
    uow: UnitOfWork,
    peer: dict[str, Any],
    *,
    idempotency_key: str,
    resource: str,
    consumer: str,
    asker: str,
    purpose: str | None,
    fmt: str,
    hash_key: bytes,
) -> dict[str, Any]:
    """The peer's department starts an export here, by the grant it holds here through that peer."""
    return await exports.create(
        uow,
        peer_principal(peer, consumer, asker),
        code=resource,
        purpose=purpose,
        fmt=fmt,
        hash_key=hash_key,
        via_peer=peer["division_code"],
        export_id=str(uuid.uuid5(_OWNER_IDS, f"{peer['division_code']}:{idempotency_key}")),
    )


async def answer_page(
    uow: UnitOfWork,
    peer: dict[str, Any],
    *,
    export_id: str,
    consumer: str,
    asker: str,
    offset: int,
    hash_key: bytes,
    sealer: Sealer,
) -> dict[str, Any]:
    """One page of the peer's export after `offset` rows, by the grant as it stands now."""
    principal = peer_principal(peer, consumer, asker)
    known = await exports.owned(uow, principal, export_id)
    resource, decision, export = await exports.prepare_download(
        uow,
        principal,
        code=known.resource_code,
        export_id=export_id,
        purpose=known.purpose,
        offset=offset,
        via_peer=peer["division_code"],
    )
    # The page after the last one served goes on from its last record key (the ordinary stream's way, not OFFSET).
    after = export.last_key if offset and offset == export.rows_sent else None
    page = await exports.page(
        uow,
        principal,
        resource=resource,
        decision=decision,
        export=export,
        sent=offset,
        after=after,
        hash_key=hash_key,
        sealer=sealer,
    )
    if page.rows:
        await uow.execute(
            text("UPDATE export SET last_key = :k WHERE id = :id AND rows_sent = :sent"),
            {"k": page.last_key, "id": export.id, "sent": page.sent},
        )
    return {
        "id": export_id,
        "content": page.content.decode(),
        "rows": page.rows,
        "sent": page.sent,
        "done": page.done,
        "total_rows": export.total_rows,
        "fingerprint": export.fingerprint,
        "subjects": page.subjects,
        "grant_id": decision.grant_id,
        "masked_items": [n for n in decision.items if n not in decision.unmasked],
    }
