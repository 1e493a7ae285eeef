"""Ingest (库表交换): a provider's batch applied all or nothing, with its change log, conflicts and event.

Every row is checked first while the body streams in; only a batch without problems (and with any USCC warnings
confirmed) touches the database, and then with set-based statements on the raw asyncpg connection (COPY into
a temporary table and the change log, one upsert, one delete), inside the request's unit of work. A per-resource
advisory lock serialises batches of one resource, so the change log's sequence follows commit order per
resource and a resent batch id is seen as such.
"""

from __future__ import annotations

import gc
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.clock import china_date
from govshare_common.db import UnitOfWork
from govshare_common.errors import Forbidden, ValidationFailed
from govshare_common.identifiers import hash_identifier
from govshare_common.outbox import lock_key

from exchange_svc import parsing
from exchange_svc.domain.resources import HostedResource
from exchange_svc.domain.validation import CheckedRow, RowChecker, RowProblem, check_columns, merge
from exchange_svc.events import BATCH_INGESTED, CONFLICT_OPENED, BatchIngested, ConflictEvent
from exchange_svc.guard import require_resource
from exchange_svc.sealing import ResourceSeal, Sealer, dumps

MAX_ROWS = 100_000
MAX_REPORTED_PROBLEMS = 10_000


_paused = {"batches": 0, "was_enabled": False}


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """A batch builds hundreds of thousands of small dicts and tuples that live until it ends, none of them
    in a reference cycle; the cyclic collector would walk them again and again (≈ 40 % of the check's CPU).
    Paused only for the work on a body already received (never while a slow sender is still sending), and
    for the whole service, so it resumes when the last batch in that phase is done; reference counting
    still frees everything meanwhile."""
    if _paused["batches"] == 0:
        _paused["was_enabled"] = gc.isenabled()
        gc.disable()
    _paused["batches"] += 1
    try:
        yield
    finally:
        _paused["batches"] -= 1
        if _paused["batches"] == 0 and _paused["was_enabled"]:
            gc.enable()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def lock_resource(uow: UnitOfWork, code: str) -> None:
    """Serialises every writer of one resource's records (ingest, arbitration, dispute corrections)."""
    await uow.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(f"exchange:records:{code}")})


async def driver(uow: UnitOfWork) -> Any:
    """The asyncpg connection under the unit of work (same transaction, once a statement has begun it)."""
    raw = await uow.conn.get_raw_connection()
    return raw.driver_connection


async def authority(uow: UnitOfWork, resource: HostedResource) -> dict[str, str]:
    """item -> its authoritative provider: the declared single source, else the resource's provider."""
    rows = await uow.execute(
        text("SELECT item, provider_code FROM item_source WHERE resource_code = :c"), {"c": resource.code}
    )
    declared = {r.item: r.provider_code for r in rows}
    return {name: declared.get(name, resource.provider_code) for name in resource.item_names}


def ensure_sender(resource: HostedResource, sources: dict[str, str], department: str | None) -> None:
    if department is None or (department != resource.provider_code and department not in sources.values()):
        raise Forbidden(
            "只能向本部门提供的信息资源（或本部门为权威来源的信息项）报送数据。",
            "A department sends data only for its own resources (or items it is the declared source of).",
            code="not_own_resource",
            details={"resource": resource.code},
        )


def ensure_hosts_records(resource: HostedResource) -> None:
    if resource.status != "published":
        raise ValidationFailed(
            "该信息资源已撤销，不再接收数据。", "The resource is withdrawn.", code="resource_withdrawn"
        )
    if not resource.hosts_records:
        raise ValidationFailed(
            "该信息资源不是库表类资源，请使用文件交换。",
            "This resource is not tabular data; use file exchange.",
            code="not_tabular",
        )
    if not resource.key_items:
        raise ValidationFailed(
            "该信息资源没有身份标识信息项，请先声明记录主键。",
            "The resource has no identifier item; declare its record key first.",
            code="no_record_key",
        )


async def previous_batch(uow: UnitOfWork, code: str, batch_id: str) -> dict[str, Any] | None:
    row = (
        await uow.execute(
            text("SELECT * FROM batch WHERE resource_code = :c AND batch_id = :b"), {"c": code, "b": batch_id}
        )
    ).one_or_none()
    if row is None:
        return None
    return {**_summary(row._mapping), "replayed": True}


def _summary(row: Any) -> dict[str, Any]:
    keys = ("batch_id", "resource_code", "provider_code", "format", "rows", "inserted", "updated", "deleted")
    more = ("unchanged", "conflicts", "uscc_warnings_confirmed", "received_at")
    return {k: row[k] for k in (*keys, *more)}


@dataclass
class Checked:
    rows: list[CheckedRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    count: int = 0


async def check_stream(
    resource: HostedResource,
    fmt: str,
    chunks: AsyncIterator[bytes],
    *,
    sender: str,
    today: Any,
) -> Checked:
    out = Checked()
    full_row = sender == resource.provider_code
    received: list[tuple[int, dict[str, Any] | RowProblem]] = []
    async for number, parsed in parsing.rows(fmt, chunks):
        out.count += 1
        if out.count > MAX_ROWS:
            raise ValidationFailed(
                f"每批最多 {MAX_ROWS} 行，请拆分后分批报送。",
                f"A batch holds at most {MAX_ROWS} rows; split it.",
                code="batch_too_large",
                details={"max_rows": MAX_ROWS},
            )
        received.append((number, parsed))
    with cycle_collection_paused():
        _check_received(out, received, resource, full_row=full_row, today=today)
    return out


def _check_received(
    out: Checked,
    received: list[tuple[int, dict[str, Any] | RowProblem]],
    resource: HostedResource,
    *,
    full_row: bool,
    today: Any,
) -> None:
    if not any(isinstance(parsed, RowProblem) for _, parsed in received):
        rows = check_columns(
            [n for n, _ in received],
            [parsed for _, parsed in received],  # type: ignore[misc]
            resource,
            full_row=full_row,
            today=today,
        )
        if rows is not None:
            out.rows = rows
            return
    # Something in the batch is not plainly acceptable: row by row, every problem of every row said.
    seen: dict[str, int] = {}
    check_row = RowChecker(resource, full_row=full_row, today=today).check
    for number, parsed in received:
        if isinstance(parsed, RowProblem):
            out.problems.append(parsed)
            continue
        row, problems, warnings = check_row(number, parsed)
        out.problems.extend(problems)
        out.warnings.extend(warnings)
        if row is None:
            continue
        if not full_row and row.op == "delete":
            out.problems.append(
                RowProblem(
                    number, None, "delete_not_allowed", "只有资源提供部门可以删除记录", "only the provider deletes"
                )
            )
            continue
        first = seen.get(row.key)
        if first is not None:
            out.problems.append(
                RowProblem(
                    number,
                    None,
                    "duplicate_key",
                    f"与第 {first} 行的记录主键重复",
                    f"the record key repeats row {first}",
                )
            )
            continue
        seen[row.key] = number
        out.rows.append(row)


async def ingest(
    uow: UnitOfWork,
    principal: Principal,
    *,
    code: str,
    batch_id: str,
    fmt: str,
    chunks: AsyncIterator[bytes],
    confirm_uscc_warnings: bool,
    hash_key: bytes,
    sealer: Sealer,
) -> dict[str, Any]:
    resource = await require_resource(uow, code)
    sources = await authority(uow, resource)
    ensure_sender(resource, sources, principal.department)
    ensure_hosts_records(resource)
    replay = await previous_batch(uow, code, batch_id)
    if replay is not None:
        return replay
    assert principal.department is not None
    checked = await check_stream(resource, fmt, chunks, sender=principal.department, today=china_date(uow.clock))
    if checked.problems or (checked.warnings and not confirm_uscc_warnings):
        _refuse(checked, confirm_uscc_warnings)
    if not checked.rows:
        raise ValidationFailed("批次中没有数据行。", "The batch has no rows.", code="empty_batch")

    await lock_resource(uow, code)
    replay = await previous_batch(uow, code, batch_id)  # a concurrent resend committed while we read the body
    if replay is not None:
        return replay
    now = uow.clock.now()
    with cycle_collection_paused():
        counts = await _apply(
            uow,
            resource,
            sources,
            checked.rows,
            sender=principal.department,
            batch_id=batch_id,
            now=now,
            hash_key=hash_key,
            seal=sealer.for_resource(resource),
        )
    await uow.execute(
        text(
            "INSERT INTO batch (resource_code, batch_id, provider_code, principal, format, rows, inserted, updated, "
            "deleted, unchanged, conflicts, uscc_warnings_confirmed, received_at) VALUES (:c, :b, :p, :who, :f, :n, "
            ":ins, :upd, :del, :same, :conf, :warn, :at)"
        ),
        {
            "c": code,
            "b": batch_id,
            "p": principal.department,
            "who": principal.subject,
            "f": fmt,
            "n": len(checked.rows),
            "warn": len(checked.warnings),
            "at": now,
            **counts,
        },
    )
    await uow.execute(
        text("UPDATE resource SET last_ingest_at = :at, stale_due_at = NULL WHERE code = :c"), {"at": now, "c": code}
    )
    uow.emit(
        BATCH_INGESTED,
        f"{code}#{batch_id}",
        BatchIngested(
            batch_id=batch_id,
            resource_code=code,
            provider_code=principal.department,
            inserted=counts["ins"],
            updated=counts["upd"],
            deleted=counts["del"],
            unchanged=counts["same"],
            conflicts=counts["conf"],
            rows=len(checked.rows),
            at=now,
        ),
    )
    return {
        "batch_id": batch_id,
        "resource_code": code,
        "provider_code": principal.department,
        "format": fmt,
        "rows": len(checked.rows),
        "inserted": counts["ins"],
        "updated": counts["upd"],
        "deleted": counts["del"],
        "unchanged": counts["same"],
        "conflicts": counts["conf"],
        "uscc_warnings_confirmed": len(checked.warnings),
        "received_at": now,
        "replayed": False,
    }


def _refuse(checked: Checked, confirmed: bool) -> None:
    problems = [p.as_dict() for p in checked.problems[:MAX_REPORTED_PROBLEMS]]
    warnings = [w.as_dict() for w in checked.warnings[:MAX_REPORTED_PROBLEMS]]
    details = {
        "rows": checked.count,
        "error_count": len(checked.problems),
        "errors": problems,
        "warning_count": len(checked.warnings),
        "warnings": warnings if not confirmed else [],
    }
    if checked.problems:
        raise ValidationFailed(
            f"批次有 {len(checked.problems)} 处错误，整批未入库；请按 details.errors 逐行修改后重新报送。",
            f"The batch has {len(checked.problems)} problems and was not applied; fix the rows in details.errors.",
            code="batch_rejected",
            details=details,
        )
    raise ValidationFailed(
        f"批次有 {len(checked.warnings)} 个统一社会信用代码校验码不符；确认无误请带 confirm_uscc_warnings=true 重新报送。",
        f"{len(checked.warnings)} USCC values fail their check character; resend with confirm_uscc_warnings=true "
        "if they are right.",
        code="uscc_unconfirmed",
        details=details,
    )


async def _apply(
    uow: UnitOfWork,
    resource: HostedResource,
    sources: dict[str, str],
    rows: list[CheckedRow],
    *,
    sender: str,
    batch_id: str,
    now: datetime,
    hash_key: bytes,
    seal: ResourceSeal,
) -> dict[str, int]:
    pg = await driver(uow)
    code = resource.code
    keys = [r.key for r in rows]
    # Each key sealed once under the current key: for the lookup, for a new row, and (when the subject is the
    # key, as for ID numbers) for the subject too; a stored key that is one of them opens without decrypting.
    tokens = seal.key_tokens(keys)
    plain_of = {token: plain for plain, token in tokens.items()}
    # Stored under the token it was written with (a key rotated since still finds, and updates, its row).
    stored_key: dict[str, str] = {}
    existing: dict[str, tuple[dict[str, Any], int]] = {}
    for r in await pg.fetch(
        "SELECT record_key, data::text AS data, version FROM record "
        "WHERE resource_code = $1 AND record_key = ANY($2::text[])",
        code,
        seal.key_lookups(keys, tokens),
    ):
        plain = plain_of.get(r["record_key"]) or seal.open_key(r["record_key"])
        stored_key[plain] = r["record_key"]
        existing[plain] = (seal.open(r["data"]), r["version"])
    # Items this sender writes (its own, and the key): a new record of only these merges to itself, and when
    # that is every item no value of this batch can conflict.
    own = frozenset(n for n in resource.item_names if n in resource.key_items or sources[n] == sender)
    open_conflicts = set()
    if len(own) < len(resource.item_names):
        open_conflicts = {
            (seal.open_key(r["record_key"]), r["item"], r["candidate_provider"])
            for r in await pg.fetch(
                "SELECT record_key, item, candidate_provider FROM conflict "
                "WHERE resource_code = $1 AND state = 'open' AND record_key = ANY($2::text[])",
                code,
                seal.key_lookups(keys, tokens),
            )
        }
    subjects = seal.subject_tokens([r.subject for r in rows if r.subject is not None], tokens)
    in_order: dict[tuple[str, ...], list[str]] = {}
    staged: list[list[Any]] = []  # n, stored key, subject, data (sealed below), version, op, changed items
    to_seal: list[dict[str, Any]] = []
    conflicts: list[tuple[Any, ...]] = []
    counts = {"ins": 0, "upd": 0, "del": 0, "same": 0, "conf": 0}
    for n, row in enumerate(rows):
        before = existing.get(row.key)
        subject = subjects.get(row.subject) if row.subject is not None else None
        if row.op == "delete":
            if before is None:
                counts["same"] += 1
                continue
            staged.append([n, stored_key[row.key], subject, None, None, "delete", _in_order(resource, before[0])])
            counts["del"] += 1
            continue
        if before is None and own.issuperset(row.values):
            data, changed = row.values, tuple(row.values)
        else:
            m = merge(
                before[0] if before else None,
                row.values,
                sender=sender,
                authority=sources,
                key_items=resource.key_items,
            )
            for item, auth, served, candidate in m.conflicts:
                if (row.key, item, sender) in open_conflicts:
                    continue
                open_conflicts.add((row.key, item, sender))
                conflicts.append(
                    (
                        uuid.uuid4(),
                        code,
                        row.key,
                        item,
                        auth,
                        _json(seal.seal_value(item, served)),
                        sender,
                        _json(seal.seal_value(item, candidate)),
                        batch_id,
                        now,
                    )
                )
            if not m.changed:
                counts["same"] += 1
                continue
            data, changed = m.data, tuple(m.changed)
        ordered = in_order.get(changed)
        if ordered is None:
            ordered = in_order[changed] = _in_order(resource, changed)
        if before:
            staged.append([n, stored_key[row.key], subject, None, before[1] + 1, "update", ordered])
            counts["upd"] += 1
        else:
            staged.append([n, tokens[row.key], subject, None, 1, "insert", ordered])
            counts["ins"] += 1
        to_seal.append(data)
    if staged:
        sealed = iter(seal.seal_many(to_seal))
        for entry in staged:
            if entry[5] != "delete":
                entry[3] = dumps(next(sealed)).decode()
        await write_staged(pg, staged, code=code, batch_id=batch_id, sender=sender, now=now)
    if conflicts:
        await pg.executemany(
            "INSERT INTO conflict (id, resource_code, record_key, item, authoritative_provider, authoritative_value, "
            "candidate_provider, candidate_value, batch_id, state, opened_at) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9, 'open', $10)",
            [(c[0], c[1], stored_key.get(c[2]) or seal.key(c[2]), *c[3:]) for c in conflicts],
        )
        for c in conflicts:
            uow.emit(
                CONFLICT_OPENED,
                str(c[0]),
                ConflictEvent(
                    conflict_id=str(c[0]),
                    resource_code=code,
                    item=c[3],
                    subject_hashed=hash_identifier(c[2], key=hash_key),
                    state="open",
                    authoritative_provider=c[4],
                    candidate_provider=sender,
                ),
            )
        counts["conf"] = len(conflicts)
    return counts


async def write_staged(
    pg: Any, staged: list[list[Any]], *, code: str, batch_id: str, sender: str, now: datetime
) -> None:
    """The batch's changes, copied once into a staging table, then applied set-based: the change log first (its
    `before` is the stored row, read in the same statement), then the records updated, inserted and deleted."""
    await pg.execute(
        "CREATE TEMP TABLE incoming_record (n integer, record_key text, subject text, data jsonb, version integer, "
        "op text, changed_items text[]) ON COMMIT DROP"
    )
    await pg.copy_records_to_table("incoming_record", records=staged)
    ops = {entry[5] for entry in staged}
    # A batch of only new records has no `before` to read.
    before = "NULL" if ops == {"insert"} else "r.data"
    joined = (
        ""
        if ops == {"insert"}
        else (" LEFT JOIN record r ON s.op <> 'insert' AND r.resource_code = $1 AND r.record_key = s.record_key")
    )
    await pg.execute(
        "INSERT INTO record_change (resource_code, record_key, subject, op, changed_items, before, after, batch_id, "
        f"source, provider_code, at) SELECT $1, s.record_key, s.subject, s.op, s.changed_items, {before}, s.data, "
        f"$2, $3, $4, $5 FROM incoming_record s{joined} ORDER BY s.n",
        code,
        batch_id,
        f"batch:{batch_id}",
        sender,
        now,
    )
    if "update" in ops:
        await pg.execute(
            "UPDATE record r SET subject = s.subject, data = s.data, version = s.version, updated_at = $2, "
            "updated_by_batch = $3 FROM incoming_record s "
            "WHERE s.op = 'update' AND r.resource_code = $1 AND r.record_key = s.record_key",
            code,
            now,
            batch_id,
        )
    if "insert" in ops:
        # In key order: each index page is visited once, in turn, not at random.
        await pg.execute(
            "INSERT INTO record (resource_code, record_key, subject, data, version, updated_at, updated_by_batch) "
            "SELECT $1, record_key, subject, data, version, $2, $3 FROM incoming_record WHERE op = 'insert' "
            "ORDER BY record_key",
            code,
            now,
            batch_id,
        )
    if "delete" in ops:
        await pg.execute(
            "DELETE FROM record r USING incoming_record s "
            "WHERE s.op = 'delete' AND r.resource_code = $1 AND r.record_key = s.record_key",
            code,
        )
    await pg.execute("DROP TABLE incoming_record")


def _in_order(resource: HostedResource, names: Any) -> list[str]:
    """Item names in catalog order, so a change reads the same however its row was written."""
    wanted = set(names)
    return [n for n in resource.item_names if n in wanted]
