"""Stand-in service app: /healthz, and /readyz that really checks the database and broker it was given.

FAKESVC_CRASH=<service name> makes that service exit during start-up, and POST /crash makes one exit later,
to test the supervisor's reporting and restarts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse


def _my_name() -> str:
    port = sys.argv[sys.argv.index("--port") + 1]
    urls = json.loads(os.environ["GOVSHARE_SERVICE_URLS"])
    # The gateway's own port is the only one not in the list: the services reach it through the door (nginx).
    return next((name for name, url in urls.items() if url.endswith(f":{port}")), "gateway")


async def _database_ok() -> bool:
    url = os.environ.get("GOVSHARE_DATABASE_URL")
    if url is None:  # a service without a schema of its own (connector, console) is given none
        return True
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except Exception:
        return False
    await conn.close()
    return True


async def _broker_ok() -> bool:
    host, _, port = os.environ["GOVSHARE_KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def create_app() -> FastAPI:
    name = _my_name()
    if os.environ.get("FAKESVC_CRASH") == name:
        print(f"fakesvc {name}: crashing on purpose", flush=True)
        raise SystemExit(3)
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = {"database": await _database_ok(), "broker": await _broker_ok()}
        return JSONResponse({"service": name, "checks": checks}, status_code=200 if all(checks.values()) else 503)

    @app.post("/crash")
    async def crash() -> None:
        os._exit(7)

    return app
