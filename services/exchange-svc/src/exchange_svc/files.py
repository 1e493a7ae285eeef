"""File exchange (文件交换): a file-type resource's files, stored as bytea chunks, served under the grant rules."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import Database, UnitOfWork
from govshare_common.errors import AppError, Forbidden, NotFound, ValidationFailed
from govshare_common.record_ids import is_uuid

from exchange_svc.events import FILE_UPLOADED, FileUploaded
from exchange_svc.guard import authorize, emit_access, require_resource

CHUNK = 1024 * 1024
MAX_FILE_BYTES = 200 * 1024 * 1024


async def upload(
    uow: UnitOfWork, principal: Principal, *, code: str, name: str, content_type: str, chunks: AsyncIterator[bytes]
) -> dict[str, Any]:
    resource = await require_resource(uow, code)
    if principal.department != resource.provider_code:
        raise Forbidden(
            "只能向本部门的信息资源上传文件。", "Upload only to your own resources.", code="not_own_resource"
        )
    if resource.status != "published" or not resource.hosts_files:
        raise ValidationFailed(
            "该信息资源不是文件类资源。", "This resource is not shared as files.", code="not_file_resource"
        )
    file_id = str(uuid.uuid4())
    now = uow.clock.now()
    await uow.execute(
        text(
            "INSERT INTO hosted_file (id, resource_code, provider_code, name, content_type, size, sha256, uploaded_by, "
            "uploaded_at) VALUES (:id, :c, :p, :n, :t, 0, '', :by, :at)"
        ),
        {
            "id": file_id,
            "c": code,
            "p": resource.provider_code,
            "n": name,
            "t": content_type,
            "by": principal.subject,
            "at": now,
        },
    )
    digest, size, n, buffer = hashlib.sha256(), 0, 0, bytearray()

    async def flush(part: bytes) -> None:
        nonlocal n
        await uow.execute(
            text("INSERT INTO file_chunk (file_id, n, content) VALUES (:id, :n, :b)"),
            {"id": file_id, "n": n, "b": part},
        )
        n += 1

    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise AppError("文件超过 200 MB 上限。", "The file exceeds 200 MB.", code="too_large", status=413)
        digest.update(chunk)
        buffer.extend(chunk)
        while len(buffer) >= CHUNK:
            await flush(bytes(buffer[:CHUNK]))
            del buffer[:CHUNK]
    if buffer or n == 0:
        await flush(bytes(buffer))
    sha = digest.hexdigest()
    await uow.execute(
        text("UPDATE hosted_file SET size = :s, sha256 = :h WHERE id = :id"), {"s": size, "h": sha, "id": file_id}
    )
    await uow.execute(
        text("UPDATE resource SET last_ingest_at = :at, stale_due_at = NULL WHERE code = :c"), {"at": now, "c": code}
    )
    uow.emit(
        FILE_UPLOADED,
        file_id,
        FileUploaded(
            file_id=file_id, resource_code=code, provider_code=resource.provider_code, name=name, size=size, sha256=sha
        ),
    )
    return {
        "id": file_id,
        "resource_code": code,
        "name": name,
        "content_type": content_type,
        "size": size,
        "sha256": sha,
    }


async def listing(
    uow: UnitOfWork, principal: Principal, *, code: str, purpose: str | None, limit: int, offset: int
) -> dict[str, Any]:
    await authorize(uow, principal, code, purpose)
    params = {"c": code, "limit": limit, "offset": offset}
    total = (await uow.execute(text("SELECT count(*) FROM hosted_file WHERE resource_code = :c"), params)).scalar_one()
    rows = await uow.execute(
        text(
            "SELECT id, name, content_type, size, sha256, uploaded_at FROM hosted_file WHERE resource_code = :c "
            "ORDER BY uploaded_at DESC, id LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    items = [{**dict(r._mapping), "id": str(r.id)} for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


async def prepare_download(
    uow: UnitOfWork, principal: Principal, *, code: str, file_id: str, purpose: str | None, hash_key: bytes
) -> Any:
    resource, decision = await authorize(uow, principal, code, purpose)
    if not is_uuid(file_id):
        raise NotFound("文件不存在。", "No such file.")
    row = (
        await uow.execute(
            text("SELECT * FROM hosted_file WHERE id = :id AND resource_code = :c"), {"id": file_id, "c": code}
        )
    ).one_or_none()
    if row is None:
        raise NotFound("文件不存在。", "No such file.")
    emit_access(
        uow,
        kind="export",
        principal=principal,
        resource=resource,
        decision=decision,
        purpose=purpose,
        rows=1,
        subjects=[],
        hash_key=hash_key,
    )
    return row


async def content(db: Database, file_id: str) -> AsyncIterator[bytes]:
    n = 0
    while True:
        async with db.engine.connect() as conn:
            part = (
                await conn.execute(
                    text("SELECT content FROM file_chunk WHERE file_id = :id AND n = :n"), {"id": file_id, "n": n}
                )
            ).scalar_one_or_none()
        if part is None:
            return
        yield bytes(part)
        n += 1
