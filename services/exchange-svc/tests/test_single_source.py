"""一数一源: two providers disagree on a base item; the authoritative value is served, marked, until the platform
office arbitrates; then the chosen value is served."""

from __future__ import annotations

from exchange_helpers import API, CIVIL, HRSS, PSB, ZHANG, base_body, error_shape, jsonl, path, person


async def test_two_providers_disagree_conflict_arbitration_chosen_value_served(exchange) -> None:
    async with exchange() as x:
        code = await x.publish(base_body())
        psb_sent = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "p1"},
            content=jsonl([person(ZHANG, "张三")]),
            headers=x.system(PSB),
        )
        assert psb_sent.status_code == 200

        # Before any declaration, HRSS is no source of this resource.
        early = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "h0"},
            content=jsonl([{"GMSFHM": ZHANG, "LXDH": "13900000000"}]),
            headers=x.system(HRSS),
        )
        assert early.status_code == 403
        # Only the platform office declares sources.
        denied = await x.http.put(
            f"{API}/sources/{code}", json={"item": "LXDH", "provider_code": HRSS}, headers=x.admin(HRSS)
        )
        assert denied.status_code == 403 and error_shape(denied)["code"] == "forbidden"
        declared = await x.http.put(
            f"{API}/sources/{code}", json={"item": "LXDH", "provider_code": HRSS}, headers=x.platform()
        )
        assert declared.status_code == 200, declared.text

        # HRSS sends its phone number (it is the source) and a different name (PSB is): a conflict opens.
        sent = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "h1"},
            content=jsonl([{"GMSFHM": ZHANG, "XM": "张叁", "LXDH": "13900000000"}]),
            headers=x.system(HRSS),
        )
        assert sent.status_code == 200, sent.text
        assert (sent.json()["updated"], sent.json()["conflicts"]) == (1, 1)

        reader = x.system(CIVIL, "work_reference")  # unconditional: no grant needed, personal items masked
        served = (await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=reader)).json()
        record = served["items"][0]
        assert record["data"]["XM"] == "张*" and record["data"]["LXDH"] == "139****0000"
        assert record["marks"] == {"XM": "conflict_pending"}
        own = (await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=x.system(PSB))).json()
        assert own["items"][0]["data"]["XM"] == "张三"  # the authoritative value, meanwhile

        listed = (await x.http.get(f"{API}/conflicts", params={"state": "open"}, headers=x.platform())).json()
        assert listed["total"] == 1
        conflict = listed["items"][0]
        assert (conflict["item"], conflict["authoritative_value"], conflict["candidate_value"]) == (
            "XM",
            "张三",
            "张叁",
        )
        assert (conflict["authoritative_provider"], conflict["candidate_provider"]) == (PSB, HRSS)
        # Resending the same disagreement does not open a second conflict.
        again = await x.http.post(
            path(code, "batches"),
            params={"batch_id": "h2"},
            content=jsonl([{"GMSFHM": ZHANG, "XM": "张叁"}]),
            headers=x.system(HRSS),
        )
        assert again.json()["conflicts"] == 0

        decided = await x.http.post(
            f"{API}/conflicts/{conflict['id']}/arbitrate",
            json={"choose": "candidate", "make_source": True, "comment": "以人社登记为准"},
            headers=x.platform(),
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["state"] == "arbitrated"
        twice = await x.http.post(
            f"{API}/conflicts/{conflict['id']}/arbitrate", json={"choose": "authoritative"}, headers=x.platform()
        )
        assert twice.status_code == 409

        own = (await x.http.get(path(code, "records"), params={"subject": ZHANG}, headers=x.system(PSB))).json()
        assert own["items"][0]["data"]["XM"] == "张叁" and own["items"][0]["marks"] == {}
        history = (await x.http.get(path(code, "history"), params={"key": ZHANG}, headers=x.admin(PSB))).json()
        assert history["items"][-1]["source"].startswith("arbitration:")
        sources = (await x.http.get(f"{API}/sources/{code}", headers=x.platform())).json()
        assert {s["item"]: s["provider_code"] for s in sources["items"]}["XM"] == HRSS

        opened, arbitrated = await x.events("exchange.conflict.opened"), await x.events("exchange.conflict.arbitrated")
        assert len(opened) == 1 and len(arbitrated) == 1
        assert opened[0]["subject_hashed"] == arbitrated[0]["subject_hashed"] and ZHANG not in str(opened)
