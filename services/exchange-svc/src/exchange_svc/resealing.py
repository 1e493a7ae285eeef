"""Moving the hosted libraries onto the current sealing key (after `govshare rotate-record-key`) — and sealing
rows written before sealing existed, or before an item was marked personal: the `exchange-reseal` job.

Each run re-reads the keyring and, resource by resource under the records lock (so no ingest interleaves),
reseals up to BATCH records with their change log, conflicts and disputes. A record key that changes token
changes in every table in the same transaction, so lookups keep finding one record. When a run finds nothing
left under an older key, that key may be deleted from the keyring.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import text

from govshare_common.db import UnitOfWork

from exchange_svc.guard import require_resource
from exchange_svc.ingest import try_lock_resource
from exchange_svc.sealing import SEALED, ResourceSeal, Sealer

log = logging.getLogger("govshare.exchange.reseal")

RESEAL_JOB = "exchange-reseal"
INTERVAL_SECONDS = 60.0
BATCH = 500


def _stale(seal: ResourceSeal, column: str, *, token: bool) -> str:
    """SQL: `column` is not sealed under the current key (a token, or a JSON object with a sealed box)."""
    if token:
        return f"({column} IS NOT NULL AND {column} NOT LIKE :tok)"
    return (
        f"({column} IS NOT NULL AND (({column} ? '{SEALED}' AND {column}->>'{SEALED}' NOT LIKE :box) "
        f"OR {column} ?| CAST(:protected AS text[])))"
    )


async def reseal(uow: UnitOfWork, sealer: Sealer) -> int:
    """One run: returns how many rows were resealed."""
    sealer.reload()
    codes = [r.code for r in await uow.execute(text("SELECT code FROM resource ORDER BY code"))]
    done = 0
    for code in codes:
        seal = sealer.for_resource(await require_resource(uow, code))
        if not seal.protected:
            continue
        done += await _reseal_resource(uow, seal)
        if done >= BATCH:
            break
    if done:
        log.info("resealed %d rows onto key %s", done, sealer.current.kid)
    return done


async def _reseal_resource(uow: UnitOfWork, seal: ResourceSeal) -> int:
    kid = seal.sealer.current.kid
    params: dict[str, Any] = {
        "c": seal.code,
        "tok": f"{SEALED}{kid}.%",
        "box": f"{kid}.%",
        "protected": sorted(seal.protected),
        "limit": BATCH,
    }
    keyed = [_stale(seal, "record_key", token=True)] if seal.key_protected else []
    subject = [_stale(seal, "subject", token=True)] if seal.subject_protected else []
    if not await try_lock_resource(uow, seal.code):
        return 0  # a batch is writing this resource (for minutes, if it is large): resealed on a later run
    stale_records = " OR ".join([*keyed, *subject, _stale(seal, "data", token=False)])
    rows = (
        await uow.execute(
            text(
                f"SELECT record_key, subject, data FROM record WHERE resource_code = :c AND ({stale_records}) "
                "LIMIT :limit"
            ),
            params,
        )
    ).all()
    for r in rows:
        key = seal.key(seal.open_key(r.record_key))
        await uow.execute(
            text(
                "UPDATE record SET record_key = :k, subject = :s, data = CAST(:d AS jsonb) "
                "WHERE resource_code = :c AND record_key = :old"
            ),
            {
                "c": seal.code,
                "old": r.record_key,
                "k": key,
                "s": seal.subject(seal.open_subject(r.subject)),
                "d": _json(seal.seal(seal.open(r.data))),
            },
        )
        if key != r.record_key:
            for table in ("record_change", "conflict", "dispute"):
                await uow.execute(
                    text(f"UPDATE {table} SET record_key = :k WHERE resource_code = :c AND record_key = :old"),
                    {"c": seal.code, "k": key, "old": r.record_key},
                )
    stale_changes = " OR ".join(
        [*keyed, *subject, _stale(seal, "before", token=False), _stale(seal, "after", token=False)]
    )
    changes = (
        await uow.execute(
            text(
                f"SELECT seq, record_key, subject, before, after FROM record_change WHERE resource_code = :c "
                f"AND ({stale_changes}) LIMIT :limit"
            ),
            params,
        )
    ).all()
    for r in changes:
        await uow.execute(
            text(
                "UPDATE record_change SET record_key = :k, subject = :s, before = CAST(:b AS jsonb), "
                "after = CAST(:a AS jsonb) WHERE seq = :seq"
            ),
            {
                "seq": r.seq,
                "k": seal.key(seal.open_key(r.record_key)),
                "s": seal.subject(seal.open_subject(r.subject)),
                "b": None if r.before is None else _json(seal.seal(seal.open(r.before))),
                "a": None if r.after is None else _json(seal.seal(seal.open(r.after))),
            },
        )
    values = 0
    for table, columns in (("conflict", ("authoritative_value", "candidate_value")), ("dispute", ("corrected_value",))):
        stale = " OR ".join(f"({c} IS NOT NULL AND coalesce({c}->>'{SEALED}', '') NOT LIKE :box)" for c in columns)
        found = (
            await uow.execute(
                text(
                    f"SELECT id, item, {', '.join(columns)} FROM {table} WHERE resource_code = :c "
                    f"AND item = ANY(CAST(:protected AS text[])) AND ({stale}) LIMIT :limit"
                ),
                params,
            )
        ).all()
        for r in found:
            fresh = {c: seal.seal_value(r.item, seal.open_value(r.item, getattr(r, c))) for c in columns}
            sets = ", ".join(f"{c} = CAST(:{c} AS jsonb)" for c in columns)
            await uow.execute(
                text(f"UPDATE {table} SET {sets} WHERE id = :id"),
                {"id": r.id, **{c: None if v is None else _json(v) for c, v in fresh.items()}},
            )
            values += 1
    return len(rows) + len(changes) + values


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
