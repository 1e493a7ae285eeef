"""Audit log append and verify (issue 7). Goals: append ≥ 30,000 events/s (chain + insert); verify
10,000,000 entries in ≤ 60 s.

audit-svc's schema is migrated (its real Alembic migrations) into a fresh embedded PostgreSQL in a temp
folder; then the ledger the service uses (`audit_svc.ledger.Ledger`) is driven directly:
- **append**: N gateway.access-shaped events (~450 B each, a third with a hashed subject) go through
  `Ledger.append` in batches of `--batch` (default 5,000), one transaction per batch as the service's inbox
  does: dedup check, chain hashes computed in order, one COPY into the month's partition, head update.
  Measured from the first batch to the last commit; building the envelopes is not counted.
- **verify**: the log is then filled (same append path, larger batches) up to `--verify-entries`
  (default 10,000,000) and `audit_svc.ledger.verify` walks all of it in one snapshot, streaming
  (position, hash, body) from a server-side cursor in chunks and hashing in Python.

    uv run python bench/audit_append.py [--append-events 200000] [--verify-entries 10000000] [--batch 5000]
Result: bench/results/audit_append.json (10M entries need ~8 GB of disk and take a while to fill).
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

from _common import machine_info, write_result  # noqa: E402

NAME = "audit_append"
GOAL_APPEND_PER_SECOND = 30_000
GOAL_VERIFY_SECONDS = 60.0
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


async def _append(engine: Any, ledger: Any, start: int, total: int, batch: int, at: datetime) -> float:
    """Seconds spent appending `total` events from seq `start`, envelope building excluded."""
    spent = 0.0
    seq = start
    while seq < start + total:
        count = min(batch, start + total - seq)
        envelopes = _envelopes(seq, count, at)
        began = time.perf_counter()
        async with engine.begin() as conn:
            await ledger.append(conn, envelopes, now=datetime.now(UTC))
        spent += time.perf_counter() - began
        seq += count
    return spent


async def run(append_events: int, verify_entries: int, batch: int) -> dict[str, Any]:
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

        seconds = await _append(engine, ledger, 1, append_events, batch, at)
        append_rate = append_events / seconds
        print(f"append: {append_events} events in {seconds:.2f} s = {append_rate:,.0f}/s")

        fill_started = time.perf_counter()
        if verify_entries > append_events:
            await _append(engine, ledger, append_events + 1, verify_entries - append_events, 20_000, at)
        fill_seconds = time.perf_counter() - fill_started
        began = time.perf_counter()
        verification = await ledger_module.verify(engine)
        verify_seconds = time.perf_counter() - began
        print(f"verify: {verification.checked} entries in {verify_seconds:.2f} s, ok={verification.ok}")
        size = None
        async with engine.connect() as conn:
            from sqlalchemy import text

            size = (
                await conn.execute(
                    text("SELECT pg_total_relation_size('audit_entry_' || to_char(now(), '\"y\"YYYY\"m\"MM'))")
                )
            ).scalar()
        await engine.dispose()
        scaled = verify_seconds * GOAL_VERIFY_ENTRIES / max(verification.checked, 1)
        return {
            "goal": {
                "append_events_per_second": GOAL_APPEND_PER_SECOND,
                "verify_seconds": GOAL_VERIFY_SECONDS,
                "verify_entries": GOAL_VERIFY_ENTRIES,
            },
            "append": {
                "events": append_events,
                "batch": batch,
                "seconds": round(seconds, 3),
                "events_per_second": round(append_rate),
            },
            "verify": {
                "entries": verification.checked,
                "ok": verification.ok,
                "seconds": round(verify_seconds, 3),
                "entries_per_second": round(verification.checked / verify_seconds) if verify_seconds else None,
                "seconds_scaled_to_goal_entries": round(scaled, 1),
                "fill_seconds": round(fill_seconds, 1),
                "table_bytes": size,
            },
            "met": {
                "append": append_rate >= GOAL_APPEND_PER_SECOND,
                "verify": verification.ok and verify_seconds <= GOAL_VERIFY_SECONDS
                if verification.checked >= GOAL_VERIFY_ENTRIES
                else None,
                "verify_scaled": scaled <= GOAL_VERIFY_SECONDS,
            },
        }
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--append-events", type=int, default=200_000)
    parser.add_argument("--verify-entries", type=int, default=GOAL_VERIFY_ENTRIES)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--result-name", default=NAME)
    args = parser.parse_args()
    os.environ.setdefault("GOVSHARE_LOG_JSON", "false")
    info = machine_info()
    result = asyncio.run(run(args.append_events, args.verify_entries, args.batch))
    result["machine"] = info
    result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(write_result(args.result_name, result))


if __name__ == "__main__":
    main()
