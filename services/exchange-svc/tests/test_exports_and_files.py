"""Bulk download streams what the grant covers, resumes from where it broke off, shows its progress, and a leaked
file names its export; files of a file resource go out under the same grant rules."""

from __future__ import annotations

import csv
import io
import json

from exchange_helpers import API, CIVIL, HRSS, PSB, jsonl, path, person, resident_id, resource_body

from exchange_svc import exports


async def test_export_streams_granted_masked_rows_resumes_and_is_traceable(exchange, monkeypatch) -> None:
    monkeypatch.setattr(exports, "PAGE", 4)  # several pages from a small library
    people = [person(resident_id(f"32040419800101{i:03d}"), f"居民{i}") for i in range(10)]
    async with exchange() as x:
        code = await x.publish(resource_body())
        sent = await x.http.post(
            path(code, "batches"), params={"batch_id": "all"}, content=jsonl(people), headers=x.system(PSB)
        )
        assert sent.status_code == 200, sent.text
        await x.grant(HRSS, PSB, code, items=["GMSFHM", "XM"], unmasked=["GMSFHM"], purposes=["work_reference"])
        consumer = x.system(HRSS, "work_reference")
        refused = await x.http.post(
            path(code, "exports"), json={"format": "csv"}, headers=x.system(CIVIL, "work_reference")
        )
        assert refused.status_code == 403

        created = await x.http.post(path(code, "exports"), json={"format": "csv"}, headers=consumer)
        assert created.status_code == 201, created.text
        export_id = created.json()["id"]
        download = path(code, f"exports/{export_id}/download")

        # The connection breaks after 6 rows; the rest comes with offset=6.
        first_rows: list[list[str]] = []
        async with x.http.stream("GET", download, headers=consumer) as resp:
            fingerprint = resp.headers["x-govshare-export-fingerprint"]
            buffer = ""
            async for chunk in resp.aiter_text():
                buffer += chunk
                if buffer.count("\n") >= 7:
                    break
        lines = list(csv.reader(io.StringIO(buffer)))
        header, first_rows = lines[0], lines[1:7]
        assert header == ["GMSFHM", "XM", "_wm"]
        rest = await x.http.get(download, params={"offset": 6}, headers=consumer)
        rows = first_rows + list(csv.reader(io.StringIO(rest.text)))
        # Every row once across the break (in stored order: the record keys are sealed, so not key order).
        assert sorted(r[0] for r in rows) == sorted(p["GMSFHM"] for p in people)
        assert all(r[1].endswith("*") and r[2] == fingerprint for r in rows)

        progress = (await x.http.get(f"{API}/exports/{export_id}", headers=consumer)).json()
        assert (progress["status"], progress["rows_sent"], progress["total_rows"], progress["progress"]) == (
            "completed",
            10,
            10,
            1.0,
        )
        completed = await x.events("exchange.export.completed")
        assert [(c["export_id"], c["rows"], c["fingerprint"]) for c in completed] == [(export_id, 10, fingerprint)]
        served = [a for a in await x.events("exchange.access") if a["kind"] == "export"]
        assert sum(a["rows"] for a in served) >= 10 and {a["department_code"] for a in served} == {HRSS}

        # A leaked fragment (two lines of the file) names its export; the consumer cannot ask, the office can.
        leaked = "\n".join(",".join(r) for r in rows[3:5]).encode()
        assert (await x.http.post(f"{API}/exports/trace", content=leaked, headers=consumer)).status_code == 403
        traced = (await x.http.post(f"{API}/exports/trace", content=leaked, headers=x.platform())).json()
        assert [(t["id"], t["department_code"], t["purpose"]) for t in traced["items"]] == [
            (export_id, HRSS, "work_reference")
        ]

        jsonl_export = (await x.http.post(path(code, "exports"), json={"format": "jsonl"}, headers=consumer)).json()
        body = (await x.http.get(path(code, f"exports/{jsonl_export['id']}/download"), headers=consumer)).text
        objects = [json.loads(line) for line in body.splitlines()]
        assert len(objects) == 10 and set(objects[0]) == {"GMSFHM", "XM", "_wm"}
        assert objects[0]["_wm"] != fingerprint


async def test_file_resource_upload_and_download_under_grant(exchange) -> None:
    async with exchange() as x:
        code = await x.publish(
            resource_body(
                name="出生医学证明文件",
                format_category="electronic_file",
                format_detail="OFD",
                share_method_type="file",
                subcategory_code="004",
            )
        )
        content = bytes(range(256)) * 5000  # 1.28 MB: two chunks
        up = await x.http.post(
            path(code, "files"),
            params={"name": "证明-2026.ofd"},
            content=content,
            headers={**x.system(PSB), "Content-Type": "application/ofd"},
        )
        assert up.status_code == 201, up.text
        file_id = up.json()["id"]
        assert up.json()["size"] == len(content)
        not_owner = await x.http.post(path(code, "files"), params={"name": "x"}, content=b"x", headers=x.system(HRSS))
        assert not_owner.status_code == 403

        consumer = x.system(HRSS, "administrative_basis")
        assert (await x.http.get(path(code, f"files/{file_id}"), headers=consumer)).status_code == 403
        await x.grant(HRSS, PSB, code, items=[], purposes=["administrative_basis"])
        listed = (await x.http.get(path(code, "files"), headers=consumer)).json()
        assert [f["name"] for f in listed["items"]] == ["证明-2026.ofd"]
        got = await x.http.get(path(code, f"files/{file_id}"), headers=consumer)
        assert got.status_code == 200 and got.content == content
        assert got.headers["content-type"].startswith("application/ofd")
        assert [a["kind"] for a in await x.events("exchange.access")] == ["export"]
