"""Every service boots with the same shape: health, readiness, metrics, OpenAPI, its own migrated schema."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from govshare_common.internal_auth import HEADER, internal_token
from govshare_common.settings import to_async_url

ALL = ("gateway", "catalog", "request", "exchange", "audit", "connector", "console")


async def test_every_service_answers_health_readiness_metrics_and_openapi(platform, database_url) -> None:
    async with platform(*ALL) as p:
        for name in ALL:
            async with p.client(name) as http:
                assert (await http.get("/healthz")).json() == {"status": "ok", "service": name}
                ready = await http.get("/readyz")
                assert ready.status_code == 200, (name, ready.text)
                assert ready.json()["ready"] is True
                metrics = await http.get("/metrics")
                assert "govshare_http_requests_total" in metrics.text
                openapi = (await http.get("/openapi.json")).json()
                assert openapi["info"]["title"].startswith(f"govshare {name}")

        # Each service with a database owns exactly one schema, migrated at start, with its outbox and calendar;
        # its own role sees no other (the administrator's connection looks at them all).
        async with p.apps["gateway"].state.db.engine.connect() as conn:
            seen = {r[0] for r in await conn.execute(text("SELECT schema_name FROM information_schema.schemata"))}
            assert "gateway" in seen and not {"catalog", "request", "exchange", "audit"} & seen
        engine = create_async_engine(to_async_url(database_url))
        async with engine.connect() as conn:
            schemas = {r[0] for r in await conn.execute(text("SELECT schema_name FROM information_schema.schemata"))}
            assert {"gateway", "catalog", "request", "exchange", "audit"} <= schemas
            assert not {"connector", "console"} & schemas
            for schema in ("catalog", "request", "exchange", "audit"):
                versions = (await conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version'))).all()
                assert versions, schema
                days = (await conn.execute(text(f'SELECT count(*) FROM "{schema}".calendar_day'))).scalar_one()
                assert days > 500, schema  # seeded from chinesecalendar: every year 2004–2026
        await engine.dispose()

        # The outbox feed is for platform-internal callers only, in every service.
        async with p.client("request") as http:
            assert (await http.get("/internal/events")).status_code == 403
            keys = p.apps["request"].state.settings.purpose_keys()
            ok = await http.get("/internal/events", headers={HEADER: internal_token(keys, "audit")})
            assert ok.status_code == 200 and ok.json() == {"events": [], "head": 0, "pruned_through": 0}


async def test_readiness_reports_an_unreachable_broker(platform) -> None:
    async with platform("request", kafka_bootstrap_servers="127.0.0.1:1") as p:
        async with p.client("request") as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["broker"] == "unreachable"
            assert ready.json()["checks"]["database"] == "ok"
