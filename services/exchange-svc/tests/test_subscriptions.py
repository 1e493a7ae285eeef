"""A subscriber reads every change once, in order per record, at its own pace, across a restart of the service."""

from __future__ import annotations

from exchange_helpers import HRSS, LI, PSB, WANG, ZHANG, jsonl, path, person, resource_body


async def test_subscription_sees_every_change_once_in_order_across_a_restart(exchange) -> None:
    async with exchange() as x:
        code = await x.publish(resource_body())
        await x.http.post(
            path(code, "batches"),
            params={"batch_id": "b0"},
            content=jsonl([person(WANG, "王五")]),
            headers=x.system(PSB),
        )
        await x.grant(HRSS, PSB, code, items=["GMSFHM", "XM", "HJDZ"], unmasked=["GMSFHM", "XM"])
        consumer = x.system(HRSS, "data_verification")
        sub = await x.http.post(path(code, "subscriptions"), json={}, headers=consumer)
        assert sub.status_code == 201, sub.text
        sub_id = sub.json()["id"]
        feed = path(code, f"subscriptions/{sub_id}/changes")

        async def send(batch_id: str, rows: list[dict]) -> None:
            r = await x.http.post(
                path(code, "batches"), params={"batch_id": batch_id}, content=jsonl(rows), headers=x.system(PSB)
            )
            assert r.status_code == 200, r.text

        await send("b1", [person(ZHANG, "张三"), person(LI, "李四")])
        first = (await x.http.get(feed, headers=consumer)).json()
        assert [(c["op"], c["data"]["GMSFHM"]) for c in first["items"]] == [("insert", ZHANG), ("insert", LI)]
        assert first["items"][0]["data"] == {"GMSFHM": ZHANG, "XM": "张三", "HJDZ": "江苏省常州市钟楼区***"}
        # Not acknowledged: read again, the same changes (at least once).
        assert (await x.http.get(feed, headers=consumer)).json()["items"] == first["items"]
        ack = await x.http.post(
            path(code, f"subscriptions/{sub_id}/ack"), json={"cursor": first["next_cursor"]}, headers=consumer
        )
        assert ack.status_code == 200

        await send("b2", [person(ZHANG, "张三丰"), {"_op": "delete", "GMSFHM": LI}])
        await send("b3", [person(ZHANG, "张三丰", MZ="02")])  # only an item outside the grant changed
        await send("b4", [person(ZHANG, "张三", HJDZ="江苏省常州市天宁区北大街2号"), person(LI, "李四")])

        await x.stop_exchange()
        await x.start_exchange()

        seen = []
        while True:
            page = (await x.http.get(feed, params={"limit": 2}, headers=consumer)).json()
            if not page["items"]:
                break
            seen.extend(page["items"])
            await x.http.post(
                path(code, f"subscriptions/{sub_id}/ack"), json={"cursor": page["next_cursor"]}, headers=consumer
            )
        assert [(c["op"], c["subject"], c["batch_id"]) for c in seen] == [
            ("update", ZHANG, "b2"),
            ("delete", LI, "b2"),
            ("update", ZHANG, "b4"),
            ("insert", LI, "b4"),
        ]
        assert [c["changed_items"] for c in seen] == [
            ["XM"],
            ["GMSFHM", "XM", "HJDZ"],
            ["XM", "HJDZ"],
            ["GMSFHM", "XM", "HJDZ"],
        ]
        assert seen[0]["data"]["XM"] == "张三丰" and seen[1]["data"] is None
        assert len({c["seq"] for c in seen}) == 4 and [c["seq"] for c in seen] == sorted(c["seq"] for c in seen)
        feeds = [a for a in await x.events("exchange.access") if a["kind"] == "feed"]
        assert sum(a["rows"] for a in feeds) == 2 + 2 + 4  # the first page was read twice
