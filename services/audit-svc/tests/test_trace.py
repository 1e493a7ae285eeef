"""Traceability (auditors only): who accessed a person's records, what a department accessed, a grant's whole
use — found through hashed identifiers, with no plain ID number anywhere in audit-svc's tables."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from govshare_common.identifiers import hash_identifier

sys.path.insert(0, str(Path(__file__).parent))

from contracts import ExchangeAccess, GrantIssued

PERSON = "11010519491231002X"
OTHER = "440524188001010014"
PSB = "11320404MB1234501T"
SAMR = "11320404MB1234502X"
HRSS = "11320404MB12345033"


def grant(grant_id: str, consumer: str) -> GrantIssued:
    return GrantIssued(
        grant_id=grant_id,
        request_id="r-1",
        consumer_code=consumer,
        provider_code=PSB,
        resource_id="res-1",
        resource_code="101001/000001",
        items=["XM", "SFZH"],
        unmasked_items=[],
        purposes=["data_verification"],
        scope="本单位审批人员",
        conditions=[],
        valid_from=None,
        valid_until=None,
    )


def access(n: int, department: str, grant_id: str, subjects: list[str], key: bytes) -> ExchangeAccess:
    return ExchangeAccess(
        access_id=f"a-{n}",
        kind="query" if n % 2 else "export",
        department_code=department,
        principal=f"client-{department[-4:]}",
        grant_id=grant_id,
        resource_code="101001/000001",
        purpose="data_verification",
        rows=len(subjects),
        subjects_hashed=[hash_identifier(s, key=key) for s in subjects],
        at=datetime(2025, 5, 6, 3, n, tzinfo=UTC),
    )


async def test_tracing_an_id_number_finds_every_access_to_that_person_and_no_plain_id_is_stored(audit) -> None:
    async with audit() as a:
        key = a.app.state.settings.hash_key()
        await a.emit(
            "request",
            [("grant.issued", "g-samr", grant("g-samr", SAMR)), ("grant.issued", "g-hrss", grant("g-hrss", HRSS))],
        )
        # The log is in arrival order and the two sources travel separately: the grants are logged first.
        await a.settle("request")
        accesses = [
            (1, SAMR, "g-samr", [PERSON]),
            (2, SAMR, "g-samr", [OTHER]),
            (3, HRSS, "g-hrss", [PERSON, OTHER]),
            (4, HRSS, "g-hrss", []),
            (5, SAMR, "g-samr", [PERSON]),
        ]
        await a.emit("exchange", [("exchange.access", f"a-{n}", access(n, d, g, s, key)) for n, d, g, s in accesses])
        await a.settle("exchange")

        r = await a.http.post("/api/v1/audit/trace/subject", json={"identifier": PERSON}, headers=a.auditor())
        assert r.status_code == 200, r.text
        found = r.json()
        assert found["total"] == 3
        assert sorted(item["data"]["access_id"] for item in found["items"]) == ["a-1", "a-3", "a-5"]
        assert {item["data"]["department_code"] for item in found["items"]} == {SAMR, HRSS}
        # the check letter may be typed in lower case; the page size is honoured
        lower = await a.http.post(
            "/api/v1/audit/trace/subject", json={"identifier": PERSON.lower(), "limit": 2}, headers=a.auditor()
        )
        assert lower.json()["total"] == 3 and len(lower.json()["items"]) == 2
        other = await a.http.post("/api/v1/audit/trace/subject", json={"identifier": OTHER}, headers=a.auditor())
        assert sorted(i["data"]["access_id"] for i in other.json()["items"]) == ["a-2", "a-3"]

        # what a department accessed, and a grant from issue to every use
        dept = (await a.http.get(f"/api/v1/audit/trace/departments/{HRSS}", headers=a.auditor())).json()
        assert sorted(i["data"]["access_id"] for i in dept["items"]) == ["a-3", "a-4"]
        use = (await a.http.get("/api/v1/audit/trace/grants/g-samr", headers=a.auditor())).json()
        assert [i["type"] for i in use["items"]] == ["exchange.access"] * 3 + ["grant.issued"]
        history = (await a.http.get("/api/v1/audit/trace/resources/101001%2F000001", headers=a.auditor())).json()
        assert history["total"] == 7

        # auditors only
        denied = await a.http.post(
            "/api/v1/audit/trace/subject", json={"identifier": PERSON}, headers=a.platform_admin()
        )
        assert denied.status_code == 403

        # no table of audit-svc holds the plain number (bodies are bytes: searched as UTF-8 too)
        async with a.app.state.db.engine.connect() as conn:
            in_bodies = (
                await conn.execute(
                    text("SELECT count(*) FROM audit_entry WHERE position(convert_to(:id, 'UTF8') in body) > 0"),
                    {"id": PERSON},
                )
            ).scalar_one()
            assert in_bodies == 0
            tables = [
                r.tablename
                for r in await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'audit'"))
            ]
            for table in tables:
                hits = (
                    await conn.execute(
                        text(f"SELECT count(*) FROM {table} t WHERE t::text LIKE :p"), {"p": f"%{PERSON}%"}
                    )
                ).scalar_one()
                assert hits == 0, table
            assert (
                await conn.execute(
                    text("SELECT count(*) FROM audit_subject WHERE subject_hash = :h"),
                    {"h": hash_identifier(PERSON, key=key)},
                )
            ).scalar_one() == 3
