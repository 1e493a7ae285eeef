"""A provider's batch in, a consumer's query out: validation all or nothing, idempotent batches, grant scope and
masking, and the service's own refusal without a grant."""

from __future__ import annotations

from exchange_helpers import CIVIL, HRSS, LI, PSB, WANG, ZHANG, error_shape, jsonl, path, person, resource_body


async def test_provider_ingests_and_a_granted_consumer_gets_only_its_items_masked(exchange) -> None:
    async with exchange() as x:
        code = await x.publish(resource_body())
        batch = jsonl([person(ZHANG, "张三"), person(LI, "李四", LXDH="13912345678")])
        sent = await x.http.post(
            path(code, "batches"), params={"batch_id": "b-1"}, content=batch, headers=x.system(PSB)
        )
        assert sent.status_code == 200, sent.text
        assert (sent.json()["inserted"], sent.json()["updated"], sent.json()["replayed"]) == (2, 0, False)

        # No grant yet: the service itself refuses (no gateway in front of it here).
        refused = await x.http.get(
            path(code, "records"), params={"subject": ZHANG}, headers=x.system(HRSS, "data_verification")
        )
        assert refused.status_code == 403
        assert error_shape(refused)["details"]["reason"] == "no_live_grant"

        grant_id = await x.grant(HRSS, PSB, code, items=["GMSFHM", "XM", "LXDH", "HJDZ"], unmasked=["GMSFHM"])
        got = await x.http.get(
            path(code, "records"), params={"subject": [ZHANG, LI, WANG]}, headers=x.system(HRSS, "data_verification")
        )
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["total"] == 2 and body["not_found"] == 1 and body["grant_id"] == grant_id
        by_id = {i["data"]["GMSFHM"]: i["data"] for i in body["items"]}
        assert by_id[ZHANG] == {
            "GMSFHM": ZHANG,  # named in unmasked_items
            "XM": "张*",
            "LXDH": "138****8000",
            "HJDZ": "江苏省常州市钟楼区***",
        }
        assert "CSRQ" not in by_id[LI] and "MZ" not in by_id[LI]  # not granted
        assert by_id[LI]["LXDH"] == "139****5678"

        # The purpose must be one the grant names, and must be stated.
        wrong = await x.http.get(
            path(code, "records"), params={"subject": ZHANG}, headers=x.system(HRSS, "work_reference")
        )
        assert wrong.status_code == 403 and wrong.json()["details"]["reason"] == "purpose_not_granted"
        unstated = await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=x.system(HRSS))
        assert unstated.status_code == 403 and unstated.json()["details"]["reason"] == "purpose_required"
        # Another department without a grant is refused; the provider reads its own data in full.
        other = await x.http.get(
            path(code, "records"), params={"subject": ZHANG}, headers=x.system(CIVIL, "data_verification")
        )
        assert other.status_code == 403
        own = (await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=x.system(PSB))).json()
        assert own["items"][0]["data"]["XM"] == "张三" and own["items"][0]["data"]["MZ"] == "01"

        # Each served query is an access event with hashed subjects only.
        accesses = await x.events("exchange.access")
        assert [a["department_code"] for a in accesses] == [HRSS, PSB]
        first = accesses[0]
        assert first["kind"] == "query" and first["rows"] == 2 and first["grant_id"] == grant_id
        assert first["purpose"] == "data_verification" and len(first["subjects_hashed"]) == 2
        assert ZHANG not in str(accesses) and LI not in str(accesses)

        # Revoked: refused again at once.
        await x.revoke(grant_id, HRSS, PSB, code)
        gone = await x.http.get(
            path(code, "records"), params={"subject": ZHANG}, headers=x.system(HRSS, "data_verification")
        )
        assert gone.status_code == 403


async def test_a_bad_row_rejects_the_whole_batch_and_a_resent_batch_is_a_no_op(exchange) -> None:
    async with exchange() as x:
        code = await x.publish(resource_body())
        first = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "day-1"},
            content=jsonl([person(ZHANG, "张三")]),
            headers=x.system(PSB),
        )
        assert first.status_code == 200, first.text
        before = await x.counts()

        bad_id = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")
        rows = [person(LI, "李四"), person(bad_id, "坏号"), {"GMSFHM": WANG, "XM": "王五", "CSRQ": "1990-02-30"}]
        rejected = await x.http.post(
            path(code, "batches"), params={"batch_id": "day-2"}, content=jsonl(rows), headers=x.system(PSB)
        )
        assert rejected.status_code == 422
        body = error_shape(rejected)
        assert body["code"] == "batch_rejected"
        errors = {(e["row"], e["item"], e["code"]) for e in body["details"]["errors"]}
        assert errors == {(2, "GMSFHM", "resident_id"), (3, "CSRQ", "type")}
        assert "校验码" in body["details"]["errors"][0]["reason"]
        assert await x.counts() == before  # nothing changed, no event

        # CSV, with a delete and an update; the same batch id again changes nothing more.
        csv = (
            "_op,GMSFHM,XM,LXDH,HJDZ,CSRQ,MZ\n"
            f'upsert,{LI},李四,13912345678,"江苏省常州市钟楼区西新桥二村5幢,302室",1980-01-01,01\n'
            f"upsert,{ZHANG},张三丰,13800138000,江苏省常州市钟楼区南大街1号,1949-12-31,01\n"
        ).encode()
        applied = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "day-2"},
            content=csv,
            headers={**x.system(PSB), "Content-Type": "text/csv"},
        )
        assert applied.status_code == 200, applied.text
        assert (applied.json()["inserted"], applied.json()["updated"]) == (1, 1)
        after = await x.counts()
        again = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "day-2"},
            content=csv,
            headers={**x.system(PSB), "Content-Type": "text/csv"},
        )
        assert again.status_code == 200 and again.json()["replayed"] is True
        assert (again.json()["inserted"], again.json()["updated"]) == (1, 1)
        assert await x.counts() == after
        ingested = await x.events("exchange.batch.ingested")
        assert [(e["batch_id"], e["inserted"], e["updated"], e["deleted"]) for e in ingested] == [
            ("day-1", 1, 0, 0),
            ("day-2", 1, 1, 0),
        ]
        assert ZHANG not in str(ingested)

        deleted = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "day-3"},
            content=jsonl([{"_op": "delete", "GMSFHM": LI}]),
            headers=x.system(PSB),
        )
        assert deleted.json()["deleted"] == 1
        # Each record's history: what changed, when, from which batch.
        history = (await x.http.get(path(code, "history"), params={"key": ZHANG}, headers=x.admin(PSB))).json()
        assert [(h["op"], h["batch_id"]) for h in history["items"]] == [("insert", "day-1"), ("update", "day-2")]
        assert history["items"][1]["changed_items"] == ["XM"]
        assert history["items"][1]["before"]["XM"] == "张三" and history["items"][1]["after"]["XM"] == "张三丰"
        address = (await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=x.system(PSB))).json()
        assert address["items"][0]["data"]["XM"] == "张三丰"

        # Only the provider sends data for its resource.
        foreign = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "x"},
            content=jsonl([person(WANG, "王五")]),
            headers=x.system(HRSS),
        )
        assert foreign.status_code == 403 and error_shape(foreign)["code"] == "not_own_resource"


async def test_a_failed_uscc_check_is_a_warning_the_provider_confirms(exchange) -> None:
    from exchange_helpers import item, uscc

    items = [
        item("TYSHXYDM", "统一社会信用代码", "C", 18, required=True, identifier_kind="uscc", sensitivity="public"),
        item("QYMC", "企业名称", "C", 200, required=True, sensitivity="public"),
        item("ZCZB", "注册资本", "Y", 12),
    ]
    async with exchange() as x:
        code = await x.publish(resource_body(name="企业登记信息", data_items=items, subcategory_code="003"))
        good = uscc("91320404MA1XY0123")
        off = good[:-1] + ("0" if good[-1] != "0" else "1")
        rows = jsonl([{"TYSHXYDM": good, "QYMC": "常州甲公司", "ZCZB": "100.50"}, {"TYSHXYDM": off, "QYMC": "乙公司"}])
        warned = await x.http.post(
            path(code, "batches"), params={"batch_id": "c-1"}, content=rows, headers=x.system(PSB)
        )
        assert warned.status_code == 422 and warned.json()["code"] == "uscc_unconfirmed"
        assert [(w["row"], w["item"]) for w in warned.json()["details"]["warnings"]] == [(2, "TYSHXYDM")]
        assert await x.scalar("SELECT count(*) FROM record") == 0
        confirmed = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "c-1", "confirm_uscc_warnings": "true"},
            content=rows,
            headers=x.system(PSB),
        )
        assert confirmed.status_code == 200 and confirmed.json()["inserted"] == 2
        assert confirmed.json()["uscc_warnings_confirmed"] == 1
