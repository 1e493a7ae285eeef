"""Personal data at rest: stored sealed under a key id, still found by ID number, and moved onto a new key by
the reseal job after a rotation, after which the old key can leave the keyring."""

from __future__ import annotations

from exchange_helpers import LI, PSB, ZHANG, jsonl, path, person, resource_body
from sqlalchemy import text

from exchange_svc.resealing import RESEAL_JOB
from exchange_svc.sealing import FOLDER, rotate_key


async def stored(x, code: str) -> list[tuple[str, str, dict]]:
    async with x.app.state.db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT record_key, subject, data FROM record WHERE resource_code = :c"), {"c": code}
        )
        return [(r.record_key, r.subject, r.data) for r in rows]


async def test_records_are_sealed_found_by_id_number_and_survive_a_key_rotation(exchange) -> None:
    async with exchange() as x:
        code = await x.publish(resource_body())
        sent = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "b-1"},
            content=jsonl([person(ZHANG, "张三", LXDH="13800138000"), person(LI, "李四")]),
            headers=x.system(PSB),
        )
        assert sent.status_code == 200, sent.text
        first_kid = x.app.state.sealer.current.kid
        rows = await stored(x, code)
        for key, subject, data in rows:
            assert key.startswith(f"~{first_kid}.") and subject == key  # the ID number is the key and the subject
            assert set(data) == {"~", "MZ", "CSRQ"} or set(data) == {"~", "MZ"}  # names, IDs, phones, addresses sealed
            assert ZHANG not in str(data) and "张三" not in str(data) and "13800138000" not in str(data)

        async def own_view() -> dict:
            got = await x.http.get(path(code, "records"), params={"subject": [ZHANG, LI]}, headers=x.system(PSB))
            assert got.status_code == 200, got.text
            return {i["key"]: i["data"]["XM"] for i in got.json()["items"]}

        assert await own_view() == {ZHANG: "张三", LI: "李四"}

        # Rotation: a new key seals from now on; the job moves every row onto it.
        keyring = x.app.state.settings.keyring()
        second_kid = rotate_key(keyring)
        assert await x.app.state.jobs.run_once(RESEAL_JOB)
        assert x.app.state.sealer.current.kid == second_kid
        rows = await stored(x, code)
        assert rows and all(k.startswith(f"~{second_kid}.") and d["~"].startswith(f"{second_kid}.") for k, _, d in rows)
        async with x.app.state.db.engine.connect() as conn:
            old = await conn.execute(
                text("SELECT count(*) FROM record_change WHERE record_key NOT LIKE :t OR after->>'~' NOT LIKE :b"),
                {"t": f"~{second_kid}.%", "b": f"{second_kid}.%"},
            )
            assert old.scalar_one() == 0

        # Nothing needs the old key any more: it leaves the keyring and every record still reads, by ID number.
        (keyring / FOLDER / f"{first_kid}.key").unlink()
        x.app.state.sealer.reload()
        assert await own_view() == {ZHANG: "张三", LI: "李四"}
        update = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "b-2"},
            content=jsonl([person(ZHANG, "张三丰")]),
            headers=x.system(PSB),
        )
        assert (update.json()["updated"], update.json()["inserted"]) == (1, 0)  # the same record, not a second one
        assert await own_view() == {ZHANG: "张三丰", LI: "李四"}
