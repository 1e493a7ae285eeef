"""Audit log append and verify (issue 19 item 4). Goals: `append_per_s` ≥ 100,000 events/s (dedup, chain,
COPY, subjects, head); `verify_10m_s` ≤ 20 s for 10,000,000 entries.

audit-svc's schema is migrated (its real Alembic migrations) into a fresh embedded PostgreSQL in a temp
folder; then the ledger the service uses (`audit_svc.ledger`) is driven directly:
- **append**: N gateway.access-shaped events (~670 B bodies, a third with a hashed subject) go through
  `Ledger.append` in batches of `--batch` (default 5,000), one transaction per batch as the service's inbox
  does: dedup check, chain hashes computed in order, one COPY into the month's partition, subjects, head.
  Measured from the first batch to the last commit; building the envelopes is not counted.
  Baseline in the same run, `copy_rows_per_s`: the same rows (already made, hashes included) by raw binary COPY
  in the same batches into a plain table of the same columns without indexes — what PostgreSQL takes at most.
- **verify**: the log is then filled (same append path, larger batches) up to `--verify-entries`
  (default 10,000,000) and `audit_svc.ledger.verify` checks all of it in one snapshot. Baseline in the same
  run, `verify_walk_entries_per_s`: the previous verification (one server-side cursor, each entry hashed and
  checked by `chain.Walk` in Python) over the first `--walk-entries` (default 1,000,000), scaled to 10 M.
- CPU: this process's (`*_cpu_s`) and PostgreSQL's (`*_postgres_cpu_s`) for each phase, since on a shared
  machine the wall clock says as much about the load as about the code.

    uv run python bench/audit_append.py [--append-events 200000] [--verify-entries 10000000] [--batch 5000]
Result: bench/results/audit_append.json (10 M entries need ~9 GB of disk and a few minutes to fill).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, postgres_cpu, write_result  # noqa: E402

NAME = "audit_append"
GOAL_APPEND_PER_SECOND = 100_000
GOAL_VERIFY_SECONDS = 20.0
GOAL_VERIFY_ENTRIES = 10_000_000


def _envelopes(start: int, count: int, at: datetime) -> list[Any]:
    from govshare_common.events import Envelope

    out = []
    for seq in range(start, start + count):
        out.append(
            Envelope(
                id=str(uuid.uuid4()),
                source="govshare/gateway",
                type="gateway.access",
                time=at,
                subject=f"client-{seq % 500}",
                seq=seq,
                data={
                    "request_id": uuid.uuid4().hex,
                    "at": at.isoformat(),
                    "principal": f"client-{seq % 500}",
                    "principal_kind": "client",
                    "department": f"11320404MB12345{seq % 90:02d}",
                    "client_id": f"gs-{seq % 500:06d}",
                    "method": "GET",
                    "route": f"/api/v1/exchange/resources/101001%2F{seq % 2000:06d}/records",
                    "resource": f"101001/{seq % 2000:06d}",
                    "purpose": "data_verification",
                    "subjects_hashed": [uuid.uuid4().hex * 2] if seq % 3 == 0 else [],
                    "outcome": "allowed",
                    "reason": None,
                    "status": 200,
                    "latency_ms": 3.2,
                    "bytes_in": 0,
                    "bytes_out": 812,
                },
            )
        )
    return out


class Phase:
    """Wall clock, this process's CPU and PostgreSQL's CPU over a phase."""

    def __init__(self, pg_pid: int) -> None:
        self.pg_pid = pg_pid
        self.wall = self.cpu = self.pg_cpu = 0.0

    def __enter__(self) -> Phase:
        self._t, self._c, self._p = time.perf_counter(), time.process_time(), postgres_cpu(self.pg_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._t
        self.cpu += time.process_time() - self._c
        self.pg_cpu += postgres_cpu(self.pg_pid) - self._p


async def _append(engine: Any, ledger: Any, start: int, total: int, batch: int, at: datetime, phase: Phase) -> None:
    """Append `total` events from seq `start`; only the appends are inside `phase`, not building envelopes."""
    seq = start
    while seq < start + total:
        count = min(batch, start + total - seq)
        envelopes = _envelopes(seq, count, at)
        with phase:
            async with engine.begin() as conn:
                await ledger.append(conn, envelopes, now=datetime.now(UTC))
        seq += count


async def _raw_copy(engine: Any, total: int, batch: int, at: datetime, phase: Phase) -> None:
    """The same rows as the append writes, made beforehand, COPY'd into a plain table without indexes."""
    from audit_svc.ledger import ENTRY_COLUMNS, _Chaining

    rows = list(_Chaining(prev=bytes(32), position=0, recorded_at=at).entries(_envelopes(1, total, at)))
    async with engine.begin() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute("CREATE TABLE raw_copy (LIKE audit_entry)")
    for k in range(0, total, batch):
        with phase:
            async with engine.begin() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                await driver.copy_records_to_table("raw_copy", records=rows[k : k + batch], columns=ENTRY_COLUMNS)
    async with engine.begin() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute("DROP TABLE raw_copy")


async def _walk(engine: Any, last: int) -> int:
    """The verification before issue 19: one cursor, every entry hashed and checked in Python by chain.Walk."""
    from audit_svc.chain import GENESIS, Walk

    walk = Walk(next_position=1, expected_prev=GENESIS, checkpoints={})
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        async with driver.transaction(isolation="repeatable_read", readonly=True):
            cursor = await driver.cursor(
                "SELECT position, hash, body FROM audit_entry WHERE position BETWEEN $1 AND $2 ORDER BY position",
                1,
                last,
            )
            while True:
                rows = await cursor.fetch(20_000)
                if not rows or not walk.feed(rows):
                    break
    assert walk.problem is None, walk.problem
    return walk.checked


def _cpu(phase: Phase) -> dict[str, float]:
    return {"wall_s": round(phase.wall, 3), "cpu_s": round(phase.cpu, 2), "postgres_cpu_s": round(phase.pg_cpu, 2)}


async def run(append_events: int, verify_entries: int, walk_entries: int, batch: int) -> dict[str, Any]:
    from sqlalchemy import text

    from govshare_common.db import make_engine
    from govshare_common.migrations import upgrade
    from govshare_stack.embedded import start_postgres

    import audit_svc
    from audit_svc import ledger as ledger_module

    root = Path(tempfile.mkdtemp(prefix="govshare-bench-audit-"))
    pg = start_postgres(root / "pgdata")
    try:
        url = pg.create_database("bench")
        engine = make_engine(url, pool_size=2, schema="audit")
        await upgrade(engine, schema="audit", migrations_dir=Path(audit_svc.__file__).parent / "migrations")
        ledger = ledger_module.Ledger()
        at = datetime.now(UTC)
        async with engine.begin() as conn:
            await ledger.ensure_month(conn, at)

        copy = Phase(pg.pid)
        await _raw_copy(engine, append_events, batch, at, copy)
        copy_rate = append_events / copy.wall
        print(f"raw COPY of the same rows: {copy_rate:,.0f} rows/s")

        append = Phase(pg.pid)
        await _append(engine, ledger, 1, append_events, batch, at, append)
        append_rate = append_events / append.wall
        print(f"append: {append_events} events in {append.wall:.2f} s = {append_rate:,.0f}/s")

        fill = Phase(pg.pid)
        if verify_entries > append_events:
            await _append(engine, ledger, append_events + 1, verify_entries - append_events, 20_000, at, fill)
        print(f"filled to {verify_entries} in {fill.wall:.0f} s")
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE audit_entry"))
            size = (
                await conn.execute(
                    text("SELECT pg_total_relation_size('audit_entry_' || to_char(now(), '\"y\"YYYY\"m\"MM'))")
                )
            ).scalar()

        verify = Phase(pg.pid)
        with verify:
            verification = await ledger_module.verify(engine)
        print(f"verify: {verification.checked} entries in {verify.wall:.2f} s, ok={verification.ok}")
        walk = Phase(pg.pid)
        with walk:
            walked = await _walk(engine, min(walk_entries, verify_entries))
        walk_rate = walked / walk.wall
        print(f"entry-by-entry walk (before): {walked} entries in {walk.wall:.2f} s = {walk_rate:,.0f}/s")
        await engine.dispose()

        verify_rate = verification.checked / verify.wall
        verify_10m = verify.wall if verification.checked >= GOAL_VERIFY_ENTRIES else GOAL_VERIFY_ENTRIES / verify_rate
        return {
            "goal": {"append_per_s": GOAL_APPEND_PER_SECOND, "verify_10m_s": GOAL_VERIFY_SECONDS},
            "append_per_s": round(append_rate),
            "verify_10m_s": round(verify_10m, 2),
            "verify_10m_measured": verification.checked >= GOAL_VERIFY_ENTRIES,
            "copy_rows_per_s": round(copy_rate),
            "append_ratio_to_copy": round(append_rate / copy_rate, 3),
            "verify_entries_per_s": round(verify_rate),
            "verify_walk_entries_per_s": round(walk_rate),
            "verify_walk_10m_s_scaled": round(GOAL_VERIFY_ENTRIES / walk_rate, 1),
            "met": {
                "append_per_s": append_rate >= GOAL_APPEND_PER_SECOND,
                "verify_10m_s": verification.ok and verify_10m <= GOAL_VERIFY_SECONDS,
            },
            "append": {"events": append_events, "batch": batch, **_cpu(append)},
            "raw_copy": {"rows": append_events, "batch": batch, **_cpu(copy)},
            "verify": {
                "entries": verification.checked,
                "ok": verification.ok,
                "checkpoints_matched": verification.checkpoints_matched,
                **_cpu(verify),
                "fill": _cpu(fill),
                "partition_bytes": size,
            },
            "walk_before": {"entries": walked, **_cpu(walk)},
            "notes": (
                "append_per_s: Ledger.append in transactions of `batch` events (dedup, chain, COPY, subjects, "
                "head); copy_rows_per_s: the same rows by raw binary COPY into a table without indexes, same "
                "batches. verify_10m_s: ledger.verify of the whole log (measured when verify_10m_measured, else "
                "scaled from the entries verified); verify_walk_*: the entry-by-entry walk verify used before, "
                "same log, same run. *_cpu_s: this process; *_postgres_cpu_s: the server and its workers."
            ),
        }
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--append-events", type=int, default=200_000)
    parser.add_argument("--verify-entries", type=int, default=GOAL_VERIFY_ENTRIES)
    parser.add_argument("--walk-entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--result-name", default=NAME)
    args = parser.parse_args()
    os.environ.setdefault("GOVSHARE_LOG_JSON", "false")
    info = machine_info()
    result = asyncio.run(run(args.append_events, args.verify_entries, args.walk_entries, args.batch))
    result["machine"] = info
    result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(write_result(args.result_name, result))


if __name__ == "__main__":
    main()
