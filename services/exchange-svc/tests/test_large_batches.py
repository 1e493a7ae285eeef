"""Large batches (issue 19): a batch of several chunks (the chunk size set small) streams in, shows its progress
while it runs, and is switched in all or nothing; the first bad row fails it naming row and item; a batch
cancelled by its provider, or whose exchange-svc is SIGKILLed, leaves no record, change, event or staged row,
and the restarted service marks the killed one failed (interrupted)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
from exchange_helpers import API, CIVIL, HRSS, PSB, base_body, error_shape, jsonl, path, person, resource_body

from govshare_common.identifiers import resident_id_check_char
from govshare_common.testing import eventually

from exchange_svc import ingest

CHUNK = 50
ROWS = 400  # eight chunks


def people(n: int, *, phone: str = "13800138000") -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        first17 = f"320404{1950 + i % 50:04d}0{1 + i % 9}{10 + i % 18:02d}{i:03d}"[:17]
        out.append(person(first17 + resident_id_check_char(first17), f"张{i}", LXDH=phone))
    return out


class Pieces:
    """A request body sent a chunk's worth of rows at a time, each piece only once the test lets it go."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.pieces = [jsonl(rows[i : i + CHUNK]) for i in range(0, len(rows), CHUNK)]
        self.allowed = 0
        self.sent = 0
        self._go = asyncio.Event()

    def allow(self, upto: int) -> None:
        self.allowed = upto
        self._go.set()

    async def body(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            while self.sent >= self.allowed:
                self._go.clear()
                await self._go.wait()
            self.sent += 1
            yield piece


async def run_of(x: Any, batch_id: str) -> dict[str, Any] | None:
    listed = await x.http.get(f"{API}/batches", params={"batch_id": batch_id}, headers=x.system(PSB))
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    return items[0] if items else None


async def leftovers(x: Any) -> dict[str, int]:
    """Staging tables of any session, and database sessions still in a batch's transaction (its connection,
    back in the pool, may live on idle)."""
    return {
        "staging": await x.scalar(
            "SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname IN ('incoming_record', 'incoming_key')"
        ),
        "in_batch": await x.scalar(
            "SELECT count(*) FROM pg_stat_activity a JOIN batch_run r ON r.backend_pid = a.pid "
            "AND r.backend_started_at = a.backend_start WHERE a.state <> 'idle' AND a.pid <> pg_backend_pid()"
        ),
    }


async def test_a_batch_of_many_chunks_streams_in_with_progress_and_is_applied_all_at_once(exchange) -> None:
    async with exchange(ingest_chunk_rows=CHUNK) as x:
        code = await x.publish(resource_body())
        pieces = Pieces(people(ROWS))
        pieces.allow(1)
        sending = asyncio.create_task(
            x.http.post(
                path(code, "batches"), params={"batch_id": "big-1"}, content=pieces.body(), headers=x.system(PSB)
            )
        )
        seen: list[dict[str, Any]] = []
        run = await eventually(lambda: run_of(x, "big-1"))
        seen.append(run)
        for k in range(2, len(pieces.pieces) + 1):
            pieces.allow(k)
            # With piece k in, chunk k-1 is checked and staged (one chunk is read ahead).
            seen.append(await eventually(lambda k=k: _at_least(x, "big-1", (k - 1) * CHUNK)))
            if k < len(pieces.pieces):  # staged but not applied: no record is there while the batch runs
                assert await x.scalar("SELECT count(*) FROM record WHERE resource_code = :c", c=code) == 0
        sent = await sending
        assert sent.status_code == 200, sent.text
        assert (sent.json()["rows"], sent.json()["inserted"]) == (ROWS, ROWS)
        done = await run_of(x, "big-1")
        assert done is not None
        seen.append(done)

        states = [r["state"] for r in seen]
        order = ["receiving", "validating", "applying", "done"]
        assert states == sorted(states, key=order.index) and states[0] == "receiving" and states[-1] == "done"
        done_rows = [r["rows_done"] for r in seen]
        assert done_rows == sorted(done_rows) and done_rows[-1] == ROWS
        running = seen[3]
        assert running["state"] == "receiving" and running["rows_total"] is None and running["rows_per_s"] > 0
        assert done["rows_total"] == ROWS and done["result"]["inserted"] == ROWS and done["finished_at"]
        assert done["id"] == sent.json()["run_id"]
        one = await x.http.get(f"{API}/batches/{done['id']}", headers=x.system(PSB))
        assert one.status_code == 200 and one.json()["state"] == "done"
        bogus = await x.http.get(f"{API}/batches", params={"state": "finished"}, headers=x.system(PSB))
        assert bogus.status_code == 422 and error_shape(bogus)["details"]["fields"][0]["field"] == "state"
        running_only = await x.http.get(f"{API}/batches", params={"state": "receiving"}, headers=x.system(PSB))
        assert running_only.json()["total"] == 0
        # Another department neither lists nor reads the provider's batches.
        theirs = await x.http.get(f"{API}/batches", headers=x.system(CIVIL))
        assert theirs.status_code == 200 and theirs.json()["total"] == 0
        assert (await x.http.get(f"{API}/batches/{done['id']}", headers=x.system(CIVIL))).status_code == 404

        counts = await x.counts()
        assert (counts["record"], counts["record_change"], counts["batch"]) == (ROWS, ROWS, 1)
        assert len(await x.events("exchange.batch.ingested")) == 1
        assert await leftovers(x) == {"staging": 0, "in_batch": 0}

        # The same people with a new phone number, again in eight chunks: every row a second version.
        update = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "big-2"},
            content=jsonl(people(ROWS, phone="13912345678")),
            headers=x.system(PSB),
        )
        assert update.status_code == 200, update.text
        assert (update.json()["updated"], update.json()["inserted"]) == (ROWS, 0)
        assert await x.scalar("SELECT count(*) FROM record WHERE version = 2") == ROWS
        assert await x.scalar("SELECT count(*) FROM record_change WHERE batch_id = 'big-2'") == ROWS


async def _at_least(x: Any, batch_id: str, rows: int) -> dict[str, Any] | None:
    run = await run_of(x, batch_id)
    return run if run is not None and run["rows_done"] >= rows else None


async def test_the_first_bad_row_in_a_late_chunk_fails_the_whole_batch_naming_row_and_item(exchange) -> None:
    async with exchange(ingest_chunk_rows=CHUNK) as x:
        code = await x.publish(resource_body())
        before = await x.counts()
        rows = people(ROWS)
        bad = rows[229]["GMSFHM"]
        rows[229]["GMSFHM"] = bad[:17] + ("0" if bad[17] != "0" else "1")  # a wrong check digit, row 230
        sent = await x.http.post(
            path(code, "batches"), params={"batch_id": "bad-1"}, content=jsonl(rows), headers=x.system(PSB)
        )
        assert sent.status_code == 422, sent.text
        body = error_shape(sent)
        assert body["code"] == "batch_rejected"
        assert body["details"]["first_error"]["row"] == 230 and body["details"]["first_error"]["item"] == "GMSFHM"
        assert "第 230 行" in body["message"] and "GMSFHM" in body["message"]
        # Four chunks were staged before it: none of them is applied.
        assert await x.counts() == before
        run = await run_of(x, "bad-1")
        assert run is not None and run["state"] == "failed" and run["error"]["code"] == "batch_rejected"
        assert run["error"]["details"]["first_error"]["row"] == 230

        # A key repeated in a later chunk than its first row is refused as within a chunk.
        rows = people(ROWS)
        rows[379] = dict(rows[9])
        again = await x.http.post(
            path(code, "batches"), params={"batch_id": "bad-2"}, content=jsonl(rows), headers=x.system(PSB)
        )
        assert again.status_code == 422, again.text
        first = again.json()["details"]["first_error"]
        assert (first["row"], first["code"]) == (380, "duplicate_key") and "第 10 行" in first["reason"]
        assert await x.counts() == before
        assert await leftovers(x) == {"staging": 0, "in_batch": 0}


async def test_a_cancelled_batch_leaves_nothing_and_only_its_provider_may_cancel_it(exchange) -> None:
    async with exchange(ingest_chunk_rows=CHUNK) as x:
        code = await x.publish(resource_body())
        before = await x.counts()
        pieces = Pieces(people(ROWS))
        pieces.allow(3)
        sending = asyncio.create_task(
            x.http.post(path(code, "batches"), params={"batch_id": "c-1"}, content=pieces.body(), headers=x.system(PSB))
        )
        run = await eventually(lambda: _at_least(x, "c-1", 2 * CHUNK))
        assert run["cancellable"] is True
        # Another department's cancel finds no such batch; the provider's is taken.
        other = await x.http.post(f"{API}/batches/{run['id']}/cancel", headers=x.system(CIVIL))
        assert other.status_code == 404 and error_shape(other)["code"] == "batch_not_found"
        asked = await x.http.post(f"{API}/batches/{run['id']}/cancel", headers=x.system(PSB))
        assert asked.status_code == 200, asked.text
        assert asked.json()["cancel_requested_at"] and asked.json()["cancellable"] is False
        pieces.allow(len(pieces.pieces))
        try:
            answer: httpx.Response | None = await sending
        except httpx.HTTPError:
            answer = None  # the service may answer before it has read the rest of the body
        if answer is not None:
            assert answer.status_code == 409 and error_shape(answer)["code"] == "batch_cancelled"
        ended = await eventually(lambda: _ended(x, "c-1"))
        assert ended["state"] == "cancelled" and ended["error"]["code"] == "batch_cancelled"
        # Nothing of the batch; the one event is the provider's cancel, for the audit log.
        assert await x.counts() == {**before, "outbox": before["outbox"] + 1}
        (cancelled,) = await x.events("exchange.batch.cancel_requested")
        assert (cancelled["batch_id"], cancelled["run_id"]) == ("c-1", run["id"])
        assert await leftovers(x) == {"staging": 0, "in_batch": 0}
        # An ended batch cannot be cancelled again.
        late = await x.http.post(f"{API}/batches/{run['id']}/cancel", headers=x.system(PSB))
        assert late.status_code == 409 and error_shape(late)["code"] == "batch_not_cancellable"


async def _ended(x: Any, batch_id: str) -> dict[str, Any] | None:
    run = await run_of(x, batch_id)
    return run if run is not None and run["finished_at"] else None


async def test_a_batch_whose_service_is_killed_leaves_nothing_and_is_marked_interrupted(exchange, tmp_path) -> None:
    async with exchange(ingest_chunk_rows=CHUNK) as x:
        code = await x.publish(resource_body())
        before = await x.counts()
        await x.stop_exchange()
        proc = await x.start_exchange_process(tmp_path / "exchange.log")
        pieces = Pieces(people(ROWS))
        pieces.allow(4)
        sending = asyncio.create_task(
            x.http.post(path(code, "batches"), params={"batch_id": "k-1"}, content=pieces.body(), headers=x.system(PSB))
        )
        run = await eventually(lambda: _at_least(x, "k-1", 3 * CHUNK))
        # The batch's transaction is open (its staging tables, uncommitted, are seen by no other session).
        assert (await leftovers(x))["in_batch"] == 1

        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        pieces.allow(len(pieces.pieces))
        try:
            await sending
            raise AssertionError("a killed service answered")
        except httpx.HTTPError:
            pass
        # PostgreSQL ends the dead process's transaction: nothing of the batch is there.
        await eventually(lambda: _equals(leftovers(x), {"staging": 0, "in_batch": 0}))
        assert await x.counts() == before

        # Restarted, the service marks the run failed (interrupted).
        await x.start_exchange()
        interrupted = await eventually(lambda: _ended(x, "k-1"))
        assert interrupted["id"] == run["id"]
        assert (interrupted["state"], interrupted["error"]["code"]) == ("failed", "interrupted")
        assert interrupted["rows_done"] == 3 * CHUNK
        assert await x.counts() == before

        # And the provider sends it again, whole.
        resent = await x.http.post(
            path(code, "batches"), params={"batch_id": "k-1"}, content=jsonl(people(ROWS)), headers=x.system(PSB)
        )
        assert resent.status_code == 200 and resent.json()["inserted"] == ROWS


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


def csv_body(rows: list[dict[str, Any]]) -> bytes:
    names = list(rows[0])
    return ("\n".join([",".join(names), *(",".join(str(r[n]) for n in names) for r in rows)]) + "\n").encode()


async def test_a_csv_batch_of_many_chunks_keeps_the_single_source_rule_in_every_chunk(exchange) -> None:
    async with exchange(ingest_chunk_rows=CHUNK) as x:
        code = await x.publish(base_body())
        everyone = people(ROWS)
        sent = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "csv-1", "format": "csv"},
            content=csv_body(everyone),
            headers=x.system(PSB),
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["inserted"] == ROWS
        declared = await x.http.put(
            f"{API}/sources/{code}", json={"item": "LXDH", "provider_code": HRSS}, headers=x.platform()
        )
        assert declared.status_code == 200, declared.text
        # HRSS, the phone number's source, sends every person's phone and, in rows of three chunks, a name of
        # its own (PSB's item): one conflict per such row, in whichever chunk it came.
        names = {60: "李甲", 170: "李乙", 390: "李丙"}
        theirs = [
            {"GMSFHM": r["GMSFHM"], "LXDH": "13700000000", **({"XM": names[i]} if i in names else {})}
            for i, r in enumerate(everyone)
        ]
        answer = await x.http.post(
            path(code, "batches"), params={"batch_id": "h-1"}, content=jsonl(theirs), headers=x.system(HRSS)
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["updated"], answer.json()["conflicts"]) == (ROWS, len(names))
        assert len(await x.events("exchange.conflict.opened")) == len(names)
        assert await x.scalar("SELECT count(*) FROM conflict WHERE batch_id = 'h-1' AND item = 'XM'") == len(names)
        # PSB's names are still served; every phone number is HRSS's, each record at its second version.
        assert await x.scalar("SELECT count(*) FROM record WHERE version = 2") == ROWS
        own = await x.http.get(
            path(code, "records"), params={"subject": everyone[170]["GMSFHM"]}, headers=x.system(PSB)
        )
        assert own.json()["items"][0]["data"]["XM"] == everyone[170]["XM"]
        assert own.json()["items"][0]["data"]["LXDH"] == "13700000000"


async def test_keys_that_share_a_fingerprint_are_told_apart_by_their_tokens(exchange, monkeypatch) -> None:
    # Every staged key given the same fingerprint: each chunk's lookup finds every earlier key of the batch, and
    # only the tokens say which of them is a repeat.
    monkeypatch.setattr(ingest, "key_fingerprint", lambda token: 7)
    async with exchange(ingest_chunk_rows=CHUNK) as x:
        code = await x.publish(resource_body())
        sent = await x.http.post(
            path(code, "batches"), params={"batch_id": "fp-1"}, content=jsonl(people(ROWS)), headers=x.system(PSB)
        )
        assert sent.status_code == 200, sent.text
        assert (sent.json()["rows"], sent.json()["inserted"]) == (ROWS, ROWS)

        rows = people(ROWS, phone="13900139000")
        rows[299] = dict(rows[49])  # a real repeat, five chunks after its first row
        again = await x.http.post(
            path(code, "batches"), params={"batch_id": "fp-2"}, content=jsonl(rows), headers=x.system(PSB)
        )
        assert again.status_code == 422, again.text
        first = error_shape(again)["details"]["first_error"]
        assert (first["row"], first["code"]) == (300, "duplicate_key") and "第 50 行" in first["reason"]
        counts = await x.counts()
        assert (counts["record"], counts["record_change"], counts["batch"]) == (ROWS, ROWS, 1)
        assert await leftovers(x) == {"staging": 0, "in_batch": 0}
