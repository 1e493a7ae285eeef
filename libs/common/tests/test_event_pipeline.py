"""The event pipeline against the real embedded PostgreSQL and Tansu: outbox → relay → Kafka → inbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import jwt
import pytest
from sqlalchemy import text

from govshare_common.internal_auth import HEADER, internal_token
from govshare_common.purpose_keys import Purpose


async def received(beta: object) -> list[tuple[str, str, int, int]]:
    async with beta.state.db.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = await conn.execute(text("SELECT event_id::text, subject, version, seq FROM received ORDER BY n"))
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def test_committed_event_reaches_other_service_once_and_rollback_emits_nothing(pipeline, items) -> None:
    async with pipeline() as (alpha, beta):
        db = alpha.state.db  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):
            async with db.unit_of_work() as uow:
                await items(uow, {"rolled-back": 1})
                raise RuntimeError("handler failed")
        async with db.unit_of_work() as uow:
            await items(uow, {"kept": 1})

        async def arrived() -> bool:
            return len(await received(beta)) >= 1

        await wait_for(arrived)
        await asyncio.sleep(1.0)  # room for a duplicate or the rolled-back event to show up, if they could
        rows = await received(beta)
        assert [(r[1], r[2], r[3]) for r in rows] == [("kept", 1, 1)]
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM item WHERE id = 'rolled-back'"))).scalar() == 0
            assert (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar() == 1


async def test_feed_serves_outbox_to_internal_callers_only(pipeline, items) -> None:
    async with pipeline() as (alpha, _beta):
        async with alpha.state.db.unit_of_work() as uow:  # type: ignore[attr-defined]
            await items(uow, {"a": 1, "b": 1, "c": 1})
        base = alpha.state.settings.service_url("alpha")  # type: ignore[attr-defined]
        keys = alpha.state.settings.purpose_keys()  # type: ignore[attr-defined]
        async with httpx.AsyncClient(base_url=base) as http:
            denied = await http.get("/internal/events")
            assert denied.status_code == 403
            assert set(denied.json()) == {"code", "message", "details", "trace_id"}

            async def sequenced() -> bool:
                r = await http.get(
                    "/internal/events",
                    params={"after": 1},
                    headers={HEADER: internal_token(keys, "t")},
                )
                return r.json()["head"] == 3

            await wait_for(sequenced)
            forever = jwt.encode(
                {"sub": "t", "aud": "govshare-internal"},
                keys.current(Purpose.INTERNAL_CALLS).key,
                algorithm="HS256",
                headers={"kid": "v1"},
            )
            no_expiry = await http.get("/internal/events", params={"after": 1}, headers={HEADER: forever})
            assert no_expiry.status_code == 403  # a credential that never expires is no credential
            r = await http.get(
                "/internal/events",
                params={"after": 1},
                headers={HEADER: internal_token(keys, "t")},
            )
            body = r.json()
            assert [e["seq"] for e in body["events"]] == [2, 3]
            assert body["events"][0]["source"] == "govshare/alpha"
            assert body["events"][0]["specversion"] == "1.0"
            # the heads a reader compares its cursors with (each partition's newest seq): internal callers only too
            assert (await http.get("/internal/events/heads")).status_code == 403
            heads = (await http.get("/internal/events/heads", headers={HEADER: internal_token(keys, "t")})).json()
            assert max(heads["heads"].values()) == 3


async def test_broker_loss_loses_no_event_and_duplicates_none(pipeline, items, broker) -> None:
    """Kill the broker while events flow, start a fresh empty one: all arrive, once, in per-item order
    (partitions are handled side by side, so only each aggregate's own events are in seq order)."""
    names = [f"item-{i}" for i in range(20)]
    rounds = 30
    async with pipeline() as (alpha, beta):
        db = alpha.state.db  # type: ignore[attr-defined]

        async def produce() -> None:
            for version in range(1, rounds + 1):
                async with db.unit_of_work() as uow:
                    await items(uow, {name: version for name in names[version % 3 :: 3]})
                await asyncio.sleep(0.03)

        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.4)
        await asyncio.to_thread(broker.restart_fresh)
        await producer

        async with db.engine.connect() as conn:
            expected = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()

        async def all_arrived() -> bool:
            return len(await received(beta)) >= expected

        await wait_for(all_arrived, timeout=60)
        await asyncio.sleep(1.5)
        rows = await received(beta)
        assert len(rows) == expected
        assert len({r[0] for r in rows}) == expected, "an event was handled twice"
        assert sorted(r[3] for r in rows) == list(range(1, expected + 1))
        per_item: dict[str, list[int]] = {}
        for _id, subject, version, _seq in rows:
            per_item.setdefault(subject, []).append(version)
        for versions in per_item.values():
            assert versions == sorted(versions)
