"""Rows committed while the connector takes its first snapshot are sent once, not once from the snapshot and
again from the log (a bad one would otherwise stand twice among the department's dead letters)."""

from __future__ import annotations

import uuid
from collections import Counter

import asyncpg
from connector_helpers import MAPPING, department_db, drop_slots

from connector.config import SourceSection
from connector.domain.snapshot_horizon import SnapshotHorizon
from connector.sources.pg_wal import WalSource
from connector.state import State
from connector.synthetic import person


def test_a_transaction_is_seen_when_it_ended_before_the_snapshot_and_not_when_it_was_running_or_later() -> None:
    h = SnapshotHorizon.parse("100:105:101,103")
    assert [x for x in range(98, 108) if h.saw(x)] == [98, 99, 100, 102, 104]
    assert str(SnapshotHorizon.parse(str(h))) == "100:105:101,103"


def test_the_logs_32_bit_ids_are_read_against_the_snapshots_64_bit_epoch() -> None:
    epoch = 3 << 32
    h = SnapshotHorizon(epoch + 10, epoch + 20, frozenset({epoch + 12}))
    assert h.saw(11) and not h.saw(12) and not h.saw(25)
    # Just before the epoch turned: 2**32 - 5 in the log is the previous epoch's id, long seen.
    assert h.saw((1 << 32) - 5)


async def test_rows_committed_between_the_slot_and_the_snapshot_are_spooled_once(postgres) -> None:
    dept = await department_db(postgres, rows=2)
    state = await State.open(postgres.create_database(f"st_{uuid.uuid4().hex[:10]}"))
    cfg = SourceSection(
        name="race", resource="R", kind="postgres_wal", database_url=dept, table="person", key=["sfzh"], mapping=MAPPING
    )
    source = WalSource(cfg, state)
    try:
        await source.prepare()  # the slot exists from here on
        db = await asyncpg.connect(dept)
        for i in (10, 11, 12):  # committed before the snapshot is read, so in it and in the log
            await db.execute("INSERT INTO person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)", *person(i).values())
        assert await source.poll() == 5  # the snapshot: two old rows and three new ones
        assert await source.poll() == 0  # the log's copies of the three are recognised
        await db.execute("INSERT INTO person (sfzh, xm, hjdz, mz) VALUES ($1, $2, $3, $4)", *person(13).values())
        await db.execute("UPDATE person SET xm = '李四' WHERE sfzh = $1", person(10)["sfzh"])
        await db.close()
        assert await source.poll() == 2

        pending, _ = await state.oldest("race", 100)
        spooled = Counter(r.record_key for r in pending)
        assert spooled == Counter({**{person(i)["sfzh"]: 1 for i in (0, 1, 11, 12, 13)}, person(10)["sfzh"]: 2})
    finally:
        if source.conn is not None:
            await source.conn.close()
        await state.close()
        await drop_slots(dept)
