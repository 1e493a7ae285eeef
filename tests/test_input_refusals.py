"""Inputs that gave 500 in the fault campaign (issue 11, point 5) answer 422 in the error shape through the
gateway, naming what is wrong: NUL bytes and invalid UTF-8 (the anonymous /auth/token included), offsets
beyond 2^63, out-of-range dates and years, NUL inside batch values and deeply nested JSON lines."""

from __future__ import annotations

import importlib
import json
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import text

from govshare_common.bounds import BIGINT_MAX, YEARS_KEY
from govshare_common.settings import Settings
from govshare_common.testing import eventually
from govshare_stack.demo import DemoContext
from govshare_stack.demo_steps import catalog, identities

from catalog_svc.demo import PSB
from gateway.demo import DEMO_PASSWORD

DOCUMENTED = {"gateway": "gateway", "catalog": "catalog_svc", "request": "request_svc", "exchange": "exchange_svc"}
DOCUMENTED["audit"] = "audit_svc"


def refused(resp: httpx.Response, field: str) -> bool:
    body = resp.json()
    assert resp.status_code == 422, resp.text
    assert set(body) == {"code", "message", "details", "trace_id"} and body["trace_id"], body
    assert body["code"] == "validation_failed", body
    fields = [f["field"] for f in body["details"]["fields"]]
    assert field in fields, (field, body)
    return True


def _integers_without_both_bounds(node: Any, where: str, out: list[str]) -> None:
    """Where an integer lacks a bound a bigint holds, or a date or date-time lacks the platform's years."""
    if isinstance(node, dict):
        bounded = "minimum" in node and node.get("maximum", float("inf")) <= float(BIGINT_MAX)
        if node.get("type") == "integer" and not bounded:
            out.append(where)
        if node.get("format") in ("date", "date-time") and YEARS_KEY not in node:
            out.append(where)
        for key, value in node.items():
            _integers_without_both_bounds(value, f"{where}/{key}", out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _integers_without_both_bounds(value, f"{where}[{i}]", out)


# The apps are built only for their OpenAPI documents, never started; they still refuse to exist without a secret.
DOCUMENTS_ONLY_SECRET = "openapi-documents-only-0123456789abcdef"


def test_every_integer_and_date_a_caller_sends_has_bounds() -> None:
    unbounded: list[str] = []
    for name, module in DOCUMENTED.items():
        document = (
            importlib.import_module(f"{module}.app").create_app(Settings(master_secret=DOCUMENTS_ONLY_SECRET)).openapi()
        )
        schemas = {k: v for k, v in document["components"]["schemas"].items() if "ValidationError" not in k}
        _integers_without_both_bounds(document["paths"], f"{name}:paths", unbounded)
        _integers_without_both_bounds(schemas, f"{name}:schemas", unbounded)
    assert not unbounded, unbounded


async def test_each_class_of_bad_input_answers_422_through_the_gateway(platform: Any, tmp_path: Any) -> None:
    async with platform("gateway", "catalog", "request", "exchange", "audit") as p, p.client() as http:
        admin = {"Authorization": f"Bearer {await p.token()}", "Accept-Language": "en"}

        # NUL bytes and bytes that are not UTF-8: in a query, a path, a form and a JSON body.
        assert refused(await http.get("/api/v1/requests?resource_code=x%00", headers=admin), "resource_code")
        assert refused(await http.get("/api/v1/requests?resource_code=%ff%fe", headers=admin), "resource_code")
        # A NUL in the path never gets past nginx's request-line parser: the door's own 400, in the error shape.
        nul_path = await http.get("/api/v1/catalog/resources/abc%00def", headers=admin)
        assert nul_path.status_code == 400 and nul_path.json()["code"] == "bad_request"
        assert nul_path.json()["trace_id"] == nul_path.headers["x-request-id"]
        token = await http.post(
            "/auth/token", data={"grant_type": "password", "username": "ad\x00min", "password": "x"}
        )
        assert refused(token, "username")
        as_multipart = {"grant_type": (None, "password"), "username": (None, "admin"), "password": (None, "a\x00")}
        assert refused(await http.post("/auth/token", files=as_multipart), "password")
        body = json.dumps({"code": "11320404014000001X", "name": "公安\u0000局", "level": "district"})
        made = await http.post(
            "/api/v1/identity/departments", content=body, headers={**admin, "Content-Type": "application/json"}
        )
        assert refused(made, "name") and "NUL" in made.json()["message"]
        surrogate = '{"code": "11320404014000001X", "name": "\\ud800", "level": "district"}'
        made = await http.post(
            "/api/v1/identity/departments", content=surrogate, headers={**admin, "Content-Type": "application/json"}
        )
        assert refused(made, "name")
        deep = "[" * 50_000 + "]" * 50_000
        nested = await http.post(
            "/api/v1/catalog/resources", content=deep, headers={**admin, "Content-Type": "application/json"}
        )
        assert refused(nested, "body")

        # Offsets and positions beyond what a bigint holds.
        huge = str(2**63 + 5)
        assert refused(await http.get("/api/v1/identity/users", params={"offset": huge}, headers=admin), "offset")
        assert refused(await http.get("/api/v1/exchange/resources", params={"offset": huge}, headers=admin), "offset")
        versions = await http.get(f"/api/v1/catalog/resources/x/versions/{huge}", headers=admin)
        assert refused(versions, "version")

        # Years and dates out of range.
        year = await http.put(
            "/api/v1/platform/calendar/years/0", json={"holidays": [], "makeup_workdays": []}, headers=admin
        )
        assert refused(year, "year")
        far = {"start": "9999-12-31", "working_days": 5}
        assert refused(await http.get("/api/v1/platform/calendar/deadline", params=far, headers=admin), "start")
        stats = await http.get("/api/v1/supervision/statistics", params={"since": "0001-01-01"}, headers=admin)
        assert refused(stats, "since")
        evaluation = await http.get("/api/v1/supervision/evaluation", params={"year": 99999}, headers=admin)
        assert refused(evaluation, "year")

        # Nothing refused here left anything behind.
        async with p.apps["gateway"].state.db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM department"))).scalar_one() == 0


async def test_nul_and_deep_nesting_inside_a_batch_are_that_rows_errors(platform: Any, tmp_path: Any) -> None:
    async with platform("gateway", "catalog", "exchange") as p, p.client() as http:
        admin_password = p.apps["gateway"].state.settings.admin_password.get_secret_value()
        ctx = DemoContext(gateway_url=p.urls["gateway"], client=http, admin_password=admin_password, home=tmp_path)
        await identities(ctx)
        await catalog(ctx)
        psb = {"Authorization": f"Bearer {await p.token('gaj_admin', DEMO_PASSWORD)}", "Accept-Language": "en"}
        mine = (await http.get("/api/v1/catalog/resources", params={"limit": 200}, headers=psb)).json()["items"]
        code = next(r["code"] for r in mine if r.get("code") and r["provider_code"] == PSB.code)
        gateway_live, exchange_db = p.apps["gateway"].state.live, p.apps["exchange"].state.db

        async def both_know_it() -> bool:
            async with exchange_db.engine.connect() as conn:
                hosted = (
                    await conn.execute(text("SELECT count(*) FROM resource WHERE code = :c"), {"c": code})
                ).scalar()
            return bool(hosted) and code in gateway_live.resources

        await eventually(both_know_it, timeout=60.0)
        lines = [
            json.dumps({"XM": "张\u0000三"}),
            '{"XM": ' + "[" * 20_000 + "]" * 20_000 + "}",
            '{"XM": ' + "[" * 40 + "]" * 40 + "}",
            json.dumps({"XM\u0000": "李四"}),
        ]
        sent = await http.post(
            f"/api/v1/exchange/resources/{quote(code, safe='')}/batches",
            params={"batch_id": "fuzz-1"},
            content=("\n".join(lines) + "\n").encode(),
            headers={**psb, "Content-Type": "application/x-ndjson"},
        )
        assert sent.status_code == 422, sent.text
        errors = sent.json()["details"]["errors"]
        by_row = {e["row"]: e for e in errors if e["code"] in ("nul_character", "too_deeply_nested")}
        assert by_row[1]["code"] == "nul_character" and by_row[1]["item"] == "XM"
        assert by_row[2]["code"] == "too_deeply_nested"
        assert by_row[3]["code"] == "too_deeply_nested"
        assert by_row[4]["code"] == "nul_character"
        async with exchange_db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM record"))).scalar_one() == 0
