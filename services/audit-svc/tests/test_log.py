"""The audit log: every event appended exactly once and chained; verification finds an altered or removed
entry at its position; the service's own database role cannot change or remove entries."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from govshare_common.settings import to_async_url

sys.path.insert(0, str(Path(__file__).parent))

from contracts import ExchangeAccess, envelope

CONSUMER = "11320404MB1234502"
AT = datetime(2025, 6, 1, 8, tzinfo=UTC)


def access(i: int) -> tuple[str, str, ExchangeAccess]:
    return (
        "exchange.access",
        f"acc-{i}",
        ExchangeAccess(
            access_id=f"acc-{i}",
            kind="query",
            department_code=CONSUMER,
            principal="client-7",
            grant_id=f"g-{i % 50}",
            resource_code=f"101001/{i % 200:06d}",
            purpose="data_verification",
            rows=1,
            subjects_hashed=[],
            at=AT,
        ),
    )


async def test_100k_events_logged_exactly_once_despite_redelivery_and_tampering_is_found(audit, database_url) -> None:
    events = 100_000
    bulk = [envelope("exchange", i + 1, *access(i), at=AT) for i in range(events)]
    # No checkpoint signed while the test runs: one signed after the 100,000 would leave the tail watched below
    # without the entry altered there (on a slow machine the test outlasts the checkpoint interval).
    async with audit(peers=(), job_intervals={"audit-checkpoint": 86_400}) as a:
        await a.deliver("exchange", bulk)
        # Redelivered by the broker: the inbox skips what it has handled...
        await a.deliver("exchange", bulk[40_000:45_000])
        # ...and when the inbox cursor itself is lost for the last 3,000, the log still takes none twice.
        async with a.app.state.db.engine.begin() as conn:
            await conn.execute(text("UPDATE inbox SET last_seq = last_seq - 3000 WHERE source = 'exchange'"))
        await a.deliver("exchange", bulk[-3_000:])
        assert await a.scalar("SELECT max(last_seq) FROM inbox WHERE source = 'exchange'") == events

        logged = await a.scalar("SELECT count(*) FROM audit_entry WHERE source = 'exchange'")
        distinct = await a.scalar("SELECT count(DISTINCT seq) FROM audit_entry WHERE source = 'exchange'")
        assert logged == distinct == events
        assert await a.scalar("SELECT max(position) FROM audit_entry") == events

        r = await a.http.get("/api/v1/audit/verify", headers=a.auditor())
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["ok"] is True and report["checked"] == events and report["problem"] is None

        # Tampering as the database superuser (not the service's role): one entry's content is changed...
        owner = create_async_engine(
            to_async_url(database_url), connect_args={"server_settings": {"search_path": "audit"}}
        )
        try:
            target = 54_321
            async with owner.begin() as conn:
                original = (
                    await conn.execute(text("SELECT body FROM audit_entry WHERE position = :p"), {"p": target})
                ).scalar_one()
                forged = bytes(original).replace(CONSUMER.encode(), b"11320404MB1234599")
                assert forged != bytes(original)
                await conn.execute(
                    text("UPDATE audit_entry SET body = :b WHERE position = :p"), {"b": forged, "p": target}
                )
            report = (await a.http.get("/api/v1/audit/verify", headers=a.auditor())).json()
            assert report["ok"] is False
            assert report["problem"]["position"] == target and report["problem"]["kind"] == "altered"

            # ...put back, and another entry removed.
            async with owner.begin() as conn:
                await conn.execute(
                    text("UPDATE audit_entry SET body = :b WHERE position = :p"), {"b": original, "p": target}
                )
            assert (await a.http.get("/api/v1/audit/verify", headers=a.auditor())).json()["ok"] is True
            removed = 77_777
            async with owner.begin() as conn:
                await conn.execute(text("DELETE FROM audit_entry WHERE position = :p"), {"p": removed})
            report = (await a.http.get("/api/v1/audit/verify", headers=a.auditor())).json()
            assert report["ok"] is False
            assert report["problem"]["position"] == removed and report["problem"]["kind"] == "removed"
            before = (
                await a.http.get("/api/v1/audit/verify", params={"from": 1, "to": removed - 1}, headers=a.auditor())
            ).json()
            assert before["ok"] is True and before["checked"] == removed - 1

            # The watch of the tail since the latest checkpoint (the dashboard, the alert rule's gauge) sees an
            # entry altered there.
            async def watched() -> tuple[bool, str]:
                status = (await a.http.get("/api/v1/supervision/chain-status", headers=a.auditor())).json()
                return status["tail"]["ok"], (await a.http.get("/metrics")).text

            ok, metrics = await watched()
            assert ok is True and "govshare_audit_chain_verified 1.0" in metrics
            async with owner.begin() as conn:
                await conn.execute(text("UPDATE audit_entry SET body = body || 'x'::bytea WHERE position = 95000"))
            ok, metrics = await watched()
            assert ok is False and "govshare_audit_chain_verified 0.0" in metrics
        finally:
            await owner.dispose()


async def test_events_arrive_through_kafka_and_a_lost_cursor_does_not_log_them_twice(audit) -> None:
    async with audit(peers=("exchange",)) as a:
        for start in range(0, 2_000, 500):
            await a.emit("exchange", [access(i) for i in range(start, start + 500)])
        await a.settle("exchange")
        # The audit inbox loses its cursors (one per partition): the consumer reads up to 700 of each again.
        async with a.app.state.db.engine.begin() as conn:
            await conn.execute(
                text("UPDATE inbox SET last_seq = greatest(0, last_seq - 700) WHERE source = 'exchange'")
            )
        await a.emit("exchange", [access(2_000)])
        await a.settle("exchange")
        assert await a.scalar("SELECT max(last_seq) FROM inbox WHERE source = 'exchange'") == 2_001
        # Only exchange's: audit-svc's own checkpoint job may sign the head meanwhile and log that event too.
        assert await a.scalar("SELECT count(*) FROM audit_entry WHERE source = 'exchange'") == 2_001
        assert await a.scalar("SELECT count(DISTINCT seq) FROM audit_entry WHERE source = 'exchange'") == 2_001
        via_kafka = await a.scalar(
            "SELECT count(*) FROM audit_entry WHERE type = 'exchange.access' AND department = :d", d=CONSUMER
        )
        assert via_kafka == 2_001
        assert (await a.http.get("/api/v1/audit/verify", headers=a.auditor())).json()["ok"] is True


async def test_the_service_role_cannot_update_or_delete_audit_rows_nor_leave_its_role(audit) -> None:
    async with audit(peers=()) as a:
        await a.deliver("exchange", [envelope("exchange", i + 1, *access(i), at=AT) for i in range(10)])
        engine = a.app.state.db.engine
        async with engine.connect() as conn:
            database = (await conn.execute(text("SELECT current_database()"))).scalar_one()
            assert (await conn.execute(text("SELECT session_user"))).scalar_one() == f"{database}_audit_writer"
        # The writer logs in as itself and belongs to no role: there is nothing to switch to.
        for switch in ("SET ROLE NONE", "RESET ROLE", "SET SESSION AUTHORIZATION DEFAULT"):
            with pytest.raises(ProgrammingError, match="permission denied"):
                async with engine.begin() as conn:
                    await conn.execute(text(switch))
                    await conn.execute(text("DELETE FROM audit_entry WHERE position = 3"))
        for role in (f"{database}_audit", "postgres"):
            with pytest.raises(ProgrammingError, match="permission denied"):
                async with engine.begin() as conn:
                    await conn.execute(text(f'SET ROLE "{role}"'))
        # Nor can it drop this month of the log through the partition function: not six months old.
        month = (await a.scalar("SELECT tableoid::regclass::text FROM audit_entry WHERE position = 3")).rsplit("_")[-1]
        with pytest.raises(ProgrammingError, match="not six months old"):
            async with engine.begin() as conn:
                await conn.execute(text("SELECT drop_month_partitions(:s)"), {"s": month})
        for statement in (
            "UPDATE audit_entry SET body = body || 'x'::bytea WHERE position = 3",
            "DELETE FROM audit_entry WHERE position = 3",
            "TRUNCATE audit_entry",
            "UPDATE audit_checkpoint SET position = 0",
            "DELETE FROM audit_subject",
        ):
            with pytest.raises(ProgrammingError, match="permission denied"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        # nor through a monthly partition directly
        partition = await a.scalar("SELECT tableoid::regclass::text FROM audit_entry WHERE position = 3")
        with pytest.raises(ProgrammingError, match="permission denied"):
            async with engine.begin() as conn:
                await conn.execute(text(f"DELETE FROM {partition} WHERE position = 3"))
        assert await a.scalar("SELECT count(*) FROM audit_entry") == 10
        report = (await a.http.get("/api/v1/audit/verify", headers=a.auditor())).json()
        assert report["ok"] is True and report["checked"] == 10
        r = await a.http.get("/api/v1/audit/verify", headers=a.platform_admin())
        assert r.status_code == 403 and set(r.json()) == {"code", "message", "details", "trace_id"}
        assert (await a.http.get("/api/v1/audit/verify")).status_code == 401
