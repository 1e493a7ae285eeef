"""What must not stop or fool a consumer, against the real PostgreSQL and Tansu: a handler that fails on one
event, a forged message on the broker, a consumer behind the source's retention, jobs on several replicas."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from govshare_common.clock import FrozenClock
from govshare_common.db import UnitOfWork
from govshare_common.events import partition_for
from govshare_common.jobs import Job, JobRunner
from govshare_common.testing import eventually, eventually_equals


async def received(beta: Any) -> list[tuple[str, str, int, int]]:
    async with beta.state.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT event_id::text, subject, version, seq FROM received ORDER BY n"))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def metric(body: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_poison_event_is_quarantined_the_rest_flow_and_a_retry_handles_it_once(pipeline, items, issuer) -> None:
    failing = {"poison"}
    async with pipeline(failing, jwks_url=issuer.jwks_url) as (alpha, beta):
        db = alpha.state.db
        async with db.unit_of_work() as uow:
            await items(uow, {"poison": 1})
        for version in range(1, 11):
            async with db.unit_of_work() as uow:
                await items(uow, {f"item-{i}": version for i in range(100)})
        async with db.unit_of_work() as uow:
            await items(uow, {"poison": 2})  # the same aggregate: it must wait behind the first

        async def others_handled() -> bool:
            return len(await received(beta)) >= 1000

        await eventually(others_handled, timeout=60)
        rows = await received(beta)
        assert len(rows) == 1000 and "poison" not in {r[1] for r in rows}
        for i in range(100):
            assert [r[2] for r in rows if r[1] == f"item-{i}"] == list(range(1, 11))

        base = beta.state.settings.service_url("beta")
        admin = issuer.headers(roles=["platform_admin"], subject="platform-office")
        async with httpx.AsyncClient(base_url=base) as http:
            denied = await http.get("/api/v1/beta/pipeline/quarantine", headers=issuer.headers(roles=["dept_admin"]))
            assert denied.status_code == 403 and set(denied.json()) == {"code", "message", "details", "trace_id"}

            async def both_held() -> list[dict[str, Any]]:
                r = await http.get("/api/v1/beta/pipeline/quarantine", headers=admin)
                assert r.status_code == 200, r.text
                items_ = r.json()["items"]
                return items_ if len(items_) == 2 else []

            held = sorted(await eventually(both_held), key=lambda e: e["seq"])
            first, second = held
            assert first["subject"] == second["subject"] == "poison"
            assert "ValueError: cannot handle poison version 1" in first["error"]
            assert second["blocked_by"] == first["seq"] and first["blocked_by"] is None
            assert "data" not in first and "envelope" not in first  # the payload is not shown

            async def counted() -> bool:
                body = (await http.get("/metrics")).text
                return (
                    metric(body, "govshare_events_quarantined_total", service="beta", source="alpha") == 2
                    and metric(body, "govshare_events_quarantine_held", service="beta", source="alpha") == 2
                )

            await eventually(counted, timeout=10)

            # The later event cannot jump the queue; the first, while the handler still fails, stays held.
            early = await http.post(f"/api/v1/beta/pipeline/quarantine/alpha/{second['seq']}/retry", headers=admin)
            assert early.status_code == 409 and early.json()["code"] == "quarantine_order"
            again = await http.post(f"/api/v1/beta/pipeline/quarantine/alpha/{first['seq']}/retry", headers=admin)
            assert again.status_code == 200 and again.json()["status"] == "held"

            failing.clear()  # the fix is deployed
            r = await http.post(f"/api/v1/beta/pipeline/quarantine/alpha/{first['seq']}/retry", headers=admin)
            assert r.status_code == 200, r.text
            assert [e["status"] for e in r.json()["events"]] == ["retried", "retried"]
            twice = await http.post(f"/api/v1/beta/pipeline/quarantine/alpha/{first['seq']}/retry", headers=admin)
            assert twice.status_code == 409 and twice.json()["code"] == "quarantine_resolved"
            missing = await http.post("/api/v1/beta/pipeline/quarantine/alpha/999999/skip", headers=admin)
            assert missing.status_code == 404

        rows = await received(beta)
        assert [(r[1], r[2]) for r in rows if r[1] == "poison"] == [("poison", 1), ("poison", 2)]
        assert len(rows) == 1002 and len({r[0] for r in rows}) == 1002
        # Each resolution is an event of beta's own, written with it.
        async with beta.state.db.engine.connect() as conn:
            types = (await conn.execute(text("SELECT type FROM outbox ORDER BY id"))).scalars().all()
        assert types == ["pipeline.event.quarantined"] * 2 + ["pipeline.event.retried"] * 2


async def test_a_forged_message_on_the_topic_is_refused_and_the_genuine_event_applied(pipeline, items) -> None:
    async with pipeline() as (alpha, beta):
        db = alpha.state.db
        async with db.unit_of_work() as uow:
            await items(uow, {"warm-up": 1})
        await eventually(lambda: _count(beta, 1))
        settings = alpha.state.settings
        partition = partition_for("grant-7", settings.topic_partitions)
        async with db.engine.connect() as conn:
            head = (await conn.execute(text("SELECT last_seq FROM outbox_head"))).scalar_one()
            prev = (
                await conn.execute(
                    text("SELECT coalesce(max(seq), 0) FROM outbox WHERE partition = :p"), {"p": partition}
                )
            ).scalar_one()
        forged = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "govshare/alpha",
            "type": "alpha.item.changed",
            "time": datetime.now(UTC).isoformat(),
            "subject": "grant-7",
            "seq": head + 1,  # the seq the genuine event is about to get
            "partition": partition,
            "prev": prev,
            "data": {"item": "grant-7", "version": 666},
        }
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
        await producer.start()
        try:
            value = json.dumps(forged).encode()
            await producer.send_and_wait(
                settings.topic("alpha"), value, key=b"grant-7", partition=partition, headers=[("ce_sig", b"00" * 32)]
            )
            await producer.send_and_wait(settings.topic("alpha"), value, key=b"grant-7", partition=partition)
        finally:
            await producer.stop()
        base = beta.state.settings.service_url("beta")
        async with httpx.AsyncClient(base_url=base) as http:

            async def refused() -> bool:
                body = (await http.get("/metrics")).text
                return metric(body, "govshare_events_refused_total", service="beta", reason="signature") >= 2

            await eventually(refused, timeout=20)
        async with db.unit_of_work() as uow:
            await items(uow, {"grant-7": 1})
        await eventually(lambda: _count(beta, 2))
        rows = await received(beta)
        assert [(r[1], r[2], r[3]) for r in rows][-1] == ("grant-7", 1, head + 1)
        assert forged["id"] not in {r[0] for r in rows}


async def _count(beta: Any, n: int) -> bool:
    return len(await received(beta)) >= n


async def test_a_consumer_behind_the_pruned_outbox_rebuilds_from_the_snapshot_and_converges(pipeline, items) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=40)
    clock = FrozenClock(long_ago)
    async with pipeline() as (alpha, beta):
        alpha.state.db.clock = clock
        db = alpha.state.db
        for version in range(1, 6):
            async with db.unit_of_work() as uow:
                await items(uow, {f"item-{i}": version for i in range(30)})
        await eventually(lambda: _count(beta, 150))
        # alpha prunes everything past its 30-day retention, apart from each item's newest event...
        clock.set(datetime.now(UTC))
        assert await alpha.state.jobs.run_once("outbox-retention")
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 30
        # ...and beta is restored from a backup of a week-old state: it had handled none of these yet.
        async with beta.state.db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM received"))
            await conn.execute(text("UPDATE inbox SET last_seq = 0 WHERE source = 'alpha'"))
        async with db.unit_of_work() as uow:
            await items(uow, {"item-0": 6, "item-new": 1})

        async def converged() -> dict[str, int]:
            latest: dict[str, int] = {}
            for _id, subject, version, _seq in await received(beta):
                latest[subject] = version
            return latest

        expected = {f"item-{i}": 5 for i in range(30)} | {"item-0": 6, "item-new": 1}
        await eventually_equals(converged, expected, timeout=60)
        async with httpx.AsyncClient() as http:
            body = (await http.get(f"{beta.state.settings.service_url('beta')}/metrics")).text
        assert metric(body, "govshare_feed_snapshot_rebuilds_total", service="beta", source="alpha") >= 1
        rows = await received(beta)
        assert len(rows) == len({r[0] for r in rows}), "an event was handled twice"


async def test_a_job_on_three_replicas_runs_once_per_tick(pipeline) -> None:
    async with pipeline() as (alpha, _beta):
        runs: list[datetime] = []

        async def tick_job(uow: UnitOfWork) -> None:
            runs.append(uow.clock.now())
            await asyncio.sleep(0.05)  # long enough for the other replicas to try the same tick meanwhile

        clock = FrozenClock(datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC))
        db = alpha.state.db
        db.clock = clock
        replicas = [JobRunner(db, "alpha", [Job("tick-test", 60.0, tick_job)]) for _ in range(3)]
        for minute in range(3):
            clock.set(datetime(2026, 3, 2, 9, minute, 1, tzinfo=UTC))
            for _attempt in range(2):  # each replica wakes more than once within the tick
                ran = await asyncio.gather(*(r.run_tick("tick-test") for r in replicas))
                assert sum(ran) <= 1
        assert [r.minute for r in runs] == [0, 1, 2]
