"""Verification names each kind of tampering — an altered body, an altered stored hash, a removed entry, a
reordered pair, a duplicated entry, a consistently rewritten tail — at its position, wherever it falls (the
first or last entry of the log or of a month's partition, or between two fetches of the walk), with the count
of entries checked before it; a range may start anywhere."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from govshare_common.clock import FrozenClock
from govshare_common.settings import to_async_url

from audit_svc import ledger

sys.path.insert(0, str(Path(__file__).parent))

from contracts import ExchangeAccess, envelope

RUN = 64  # the walk fetches this many entries at a time here (20,000 in service), so 1,000 make many boundaries
ENTRIES = 1_000
MARCH, APRIL = datetime(2025, 3, 31, 23, tzinfo=UTC), datetime(2025, 4, 1, 1, tzinfo=UTC)
FIRST_OF_APRIL = 601  # entries 1..600 are in March's partition, 601..1000 in April's


def access(i: int, at: datetime) -> tuple[str, str, ExchangeAccess]:
    return (
        "exchange.access",
        f"v-{i}",
        ExchangeAccess(
            access_id=f"v-{i}",
            kind="query",
            department_code="11320404MB1234502X",
            principal="client-3",
            grant_id=f"g-{i % 7}",
            resource_code=f"101001/{i % 30:06d}",
            purpose="data_verification",
            rows=1,
            subjects_hashed=[],
            at=at,
        ),
    )


@asynccontextmanager
async def logged_over_two_months(audit: Any) -> AsyncIterator[Any]:
    clock = FrozenClock(MARCH)
    async with audit(clock=clock, peers=()) as a:
        await a.deliver(
            "exchange", [envelope("exchange", i, *access(i, MARCH), at=MARCH) for i in range(1, FIRST_OF_APRIL)]
        )
        clock.set(APRIL)
        await a.deliver(
            "exchange",
            [envelope("exchange", i, *access(i, APRIL), at=APRIL) for i in range(FIRST_OF_APRIL, ENTRIES + 1)],
        )
        yield a


async def report(a: Any, first: int | None = None, last: int = ENTRIES) -> dict[str, Any]:
    # Up to the last delivered entry: the service may log its own checkpoint event after it meanwhile.
    return (await ledger.verify(a.app.state.db.engine, first=first, last=last)).as_dict()


async def through_api(a: Any) -> dict[str, Any]:
    r = await a.http.get("/api/v1/audit/verify", params={"to": ENTRIES}, headers=a.auditor())
    assert r.status_code == 200, r.text
    return r.json()


def problem(result: dict[str, Any]) -> tuple[int, str] | None:
    return (result["problem"]["position"], result["problem"]["kind"]) if result["problem"] else None


@pytest.fixture(autouse=True)
def small_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "VERIFY_CHUNK", RUN)


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[Any]:
    """The database superuser: tampering the service's own role cannot do."""
    engine = create_async_engine(to_async_url(database_url), connect_args={"server_settings": {"search_path": "audit"}})
    yield engine
    await engine.dispose()


async def _row(conn: AsyncConnection, position: int) -> Any:
    return (await conn.execute(text("SELECT * FROM audit_entry WHERE position = :p"), {"p": position})).one()


async def _put(conn: AsyncConnection, row: Any, **changed: Any) -> None:
    values = {**row._mapping, **changed}
    columns = ", ".join(values)
    await conn.execute(
        text(f"INSERT INTO audit_entry ({columns}) VALUES ({', '.join(':' + c for c in values)})"), values
    )


async def _swap(conn: AsyncConnection, left: int) -> None:
    """Entries `left` and `left + 1` change places (three steps: the primary key holds at every row)."""
    for old, new in ((left, -1), (left + 1, left), (-1, left + 1)):
        await conn.execute(text("UPDATE audit_entry SET position = :n WHERE position = :o"), {"n": new, "o": old})


# Positions that fall on the edges: the first and last entry of the log, of a fetch, of a month.
EDGES = (1, RUN, RUN + 1, 2 * RUN, FIRST_OF_APRIL - 1, FIRST_OF_APRIL, ENTRIES - 1, ENTRIES)


async def test_an_altered_body_or_hash_is_found_at_its_position_wherever_it_falls(audit, owner) -> None:
    async with logged_over_two_months(audit) as a:
        clean = await report(a)
        assert clean["ok"] is True and clean["checked"] == ENTRIES and clean["problem"] is None
        api = await through_api(a)
        assert (api["ok"], api["checked"], api["problem"]) == (True, ENTRIES, None)
        for target in EDGES:
            async with owner.begin() as conn:
                original = await _row(conn, target)
                forged = bytes(original.body).replace(b'"rows":1', b'"rows":9')
                assert forged != bytes(original.body)
                await conn.execute(
                    text("UPDATE audit_entry SET body = :b WHERE position = :p"), {"b": forged, "p": target}
                )
            found = await report(a)
            assert (found["ok"], problem(found), found["checked"]) == (False, (target, "altered"), target - 1)
            # The stored hash changed instead (the body put back) is found at the same entry.
            async with owner.begin() as conn:
                await conn.execute(
                    text("UPDATE audit_entry SET body = :b, hash = :h WHERE position = :p"),
                    {"b": bytes(original.body), "h": hashlib.sha256(b"forged").digest(), "p": target},
                )
            found = await report(a)
            assert (found["ok"], problem(found), found["checked"]) == (False, (target, "altered"), target - 1)
            async with owner.begin() as conn:
                await conn.execute(
                    text("UPDATE audit_entry SET hash = :h WHERE position = :p"),
                    {"h": bytes(original.hash), "p": target},
                )
            assert (await report(a))["ok"] is True
        # Asked through the API, the same.
        async with owner.begin() as conn:
            await conn.execute(text("UPDATE audit_entry SET body = body || 'x'::bytea WHERE position = 700"))
        api = await through_api(a)
        assert (api["ok"], problem(api), api["checked"]) == (False, (700, "altered"), 699)


async def test_a_removed_entry_a_reordered_pair_and_a_duplicate_are_found_at_their_positions(audit, owner) -> None:
    async with logged_over_two_months(audit) as a:
        for target in EDGES:
            async with owner.begin() as conn:
                kept = await _row(conn, target)
                await conn.execute(text("DELETE FROM audit_entry WHERE position = :p"), {"p": target})
            found = await report(a)
            assert (found["ok"], problem(found), found["checked"]) == (False, (target, "removed"), target - 1)
            async with owner.begin() as conn:
                await _put(conn, kept)
            assert (await report(a))["ok"] is True

        # Two neighbours swap places (a fetch boundary between them, then inside a fetch).
        for left in (RUN, 100):
            async with owner.begin() as conn:
                await _swap(conn, left)
            found = await report(a)
            assert (found["ok"], problem(found), found["checked"]) == (False, (left, "altered"), left - 1)
            async with owner.begin() as conn:
                await _swap(conn, left)
            assert (await report(a))["ok"] is True

        # An entry copied in a second time (into the other month's partition) is found where it repeats.
        async with owner.begin() as conn:
            await _put(conn, await _row(conn, 2 * RUN), recorded_at=APRIL)
        found = await report(a)
        assert (found["ok"], problem(found)) == (False, (2 * RUN, "altered")) and "twice" in found["problem"]["detail"]


async def test_a_consistently_rewritten_tail_differs_from_the_signed_checkpoint_and_ranges_start_anywhere(
    audit, owner
) -> None:
    async with logged_over_two_months(audit) as a:
        r = await a.http.post("/api/v1/audit/checkpoints", headers=a.auditor())
        assert r.status_code == 201, r.text
        signed = r.json()["position"]
        assert signed == ENTRIES
        assert (await report(a))["checkpoints_matched"] >= 1

        # A range that starts and ends inside fetches is anchored on the entry before it.
        middle = await report(a, first=RUN + 5, last=FIRST_OF_APRIL + 3)
        assert middle["ok"] is True and middle["checked"] == FIRST_OF_APRIL + 3 - (RUN + 5) + 1
        assert middle["anchor"] == "entry"

        # Everything from 900 on rewritten with hashes that chain: only the signed checkpoint tells.
        async with owner.begin() as conn:
            prev = bytes((await _row(conn, 899)).hash)
            for position in range(900, ENTRIES + 1):
                body = bytes((await _row(conn, position)).body).replace(b'"rows":1', b'"rows":5')
                digest = hashlib.sha256(prev + body).digest()
                await conn.execute(
                    text("UPDATE audit_entry SET body = :b, prev_hash = :ph, hash = :h WHERE position = :p"),
                    {"b": body, "ph": prev, "h": digest, "p": position},
                )
                prev = digest
        found = await report(a)
        assert (found["ok"], problem(found), found["checked"]) == (False, (ENTRIES, "checkpoint_mismatch"), ENTRIES - 1)
        assert (await report(a, last=ENTRIES - 1))["ok"] is True

        # A prev_hash column changed alone is no break of the chain (each hash rests on the hash before it).
        async with owner.begin() as conn:
            await conn.execute(text("UPDATE audit_entry SET prev_hash = :h WHERE position = 300"), {"h": bytes(32)})
        rest = await report(a, last=ENTRIES - 1)
        assert rest["ok"] is True and rest["checked"] == ENTRIES - 1
