"""The door under hostile and broken input: it forwards exactly what it received or refuses it, one caller's
bad requests never shut an area for the others, every refusal names its request, and no access record is lost —
not to a NUL byte, not to a database outage."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from gateway_helpers import (
    GONG_AN,
    SHI_JIAN,
    access_events,
    admin_headers,
    department_user,
    door_layout,
    running_door,
    setup_department,
)
from published_resources import RESOURCE, publish
from pydantic import SecretStr

from govshare_common.testing import eventually, free_port, serve
from govshare_stack.demo_steps import departments
from govshare_stack.embedded import start_postgres

from gateway.demo import DEMO_PASSWORD
from gateway.demo import seed as seed_identities


async def raw_exchange(port: int, payload: bytes, *, expect_responses: int) -> list[bytes]:
    """Send bytes on one TCP connection and read `expect_responses` HTTP status lines back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    statuses: list[bytes] = []
    try:
        while len(statuses) < expect_responses:
            line = await asyncio.wait_for(reader.readline(), timeout=10)
            if not line:
                break
            if line.startswith(b"HTTP/1.1 "):
                statuses.append(line.split()[1])
    finally:
        writer.close()
    return statuses


async def test_a_get_with_a_body_is_refused_and_poisons_no_one_elses_request(platform) -> None:
    async with platform("gateway", "catalog") as p:
        port = int(p.urls["gateway"].rsplit(":", 1)[1])
        smuggled = b"GET /api/v1/catalog/open HTTP/1.1\r\nHost: x\r\n\r\n"
        attack = (
            b"GET /api/v1/catalog/open HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + str(len(smuggled)).encode()
            + b"\r\n\r\n"
            + smuggled
        )

        async def honest_caller(http: httpx.AsyncClient) -> list[int]:
            return [(await http.get("/api/v1/catalog/open")).status_code for _ in range(10)]

        async with p.client() as http:
            outcomes = await asyncio.gather(
                *(raw_exchange(port, attack, expect_responses=1) for _ in range(8)),
                honest_caller(http),
                honest_caller(http),
            )
            for statuses in outcomes[:8]:
                assert statuses == [b"400"], statuses
            assert outcomes[8] == [200] * 10 and outcomes[9] == [200] * 10

            refused = await http.request("GET", "/api/v1/catalog/open", content=b"hello")
            # httpx sends a GET body as asked; the door refuses it in the one error shape, naming the request
            assert refused.status_code == 400
            body = refused.json()
            assert body["code"] == "bad_request_framing" and "GET" in body["message"]
            assert body["trace_id"] == refused.headers["x-request-id"] != ""
            # eight refusals opened no circuit: the area still answers everyone
            assert (await http.get("/api/v1/catalog/open")).status_code == 200


def failing_upstream() -> FastAPI:
    """An upstream with a bug: one query shape makes it answer 500, every other call succeeds."""
    app = FastAPI()

    @app.get("/api/v1/requests")
    async def requests(request: Request) -> JSONResponse:
        if "\x00" in request.query_params.get("resource_code", ""):
            return JSONResponse({"code": "internal_error"}, status_code=500)
        return JSONResponse({"items": [], "total": 0, "limit": 20, "offset": 0})

    return app


async def test_five_failing_answers_for_one_user_leave_other_departments_at_200(platform) -> None:

    async with platform("gateway") as p:
        upstream_port = int(p.apps["gateway"].state.settings.service_urls["request"].rsplit(":", 1)[1])
        async with serve(failing_upstream(), upstream_port), p.client() as http:
            admin = await admin_headers(p)
            await setup_department(http, admin, GONG_AN, "公安局")
            await setup_department(http, admin, SHI_JIAN, "市场监管局")
            tokens = {
                code: await department_user(p, http, admin, code, name, ["dept_admin"])
                for code, name in ((GONG_AN, "gaj"), (SHI_JIAN, "scjg"))
            }
            bad = {"Authorization": f"Bearer {tokens[GONG_AN]}"}
            for _ in range(6):
                r = await http.get("/api/v1/requests?resource_code=x%00", headers=bad)
                assert r.status_code == 500
            other = {"Authorization": f"Bearer {tokens[SHI_JIAN]}"}
            for _ in range(5):
                assert (await http.get("/api/v1/requests", headers=other)).status_code == 200


async def test_refusals_at_the_door_carry_the_request_id_as_their_trace_id(platform) -> None:
    async with platform("gateway") as p, p.client() as http:
        for resp in (
            await http.get("/api/v1/catalog/resources"),  # no token: 401
            await http.get("/api/v1/identity/users"),  # the gateway's own route, no token: 401
            await http.get("/api/v1/catalog/resources", headers={"Authorization": "Bearer not-a-token"}),
        ):
            assert resp.status_code == 401
            assert resp.json()["trace_id"] == resp.headers["x-request-id"], (resp.request.url, resp.headers)
            assert len(resp.json()["trace_id"]) >= 16


async def test_forty_denied_probes_among_a_nul_flood_give_forty_access_records(platform) -> None:
    async with platform("gateway") as p, p.client() as http:
        stop = asyncio.Event()

        async def flood() -> int:
            sent = 0
            while not stop.is_set():
                await http.get("/api/v1/catalog/resources/%00evil?q=%00")
                sent += 1
                await asyncio.sleep(0.01)
            return sent

        flooding = asyncio.create_task(flood())
        for n in range(40):
            r = await http.get(f"/api/v1/catalog/resources/probe-{n}")
            assert r.status_code == 401
        stop.set()
        flooded = await flooding
        events = await access_events(p.apps["gateway"])
        probes = [e for e in events if e["route"].startswith("/api/v1/catalog/resources/probe-")]
        assert sorted(e["route"] for e in probes) == sorted(f"/api/v1/catalog/resources/probe-{n}" for n in range(40))
        assert all(e["outcome"] == "denied" for e in probes)
        nul = [e for e in events if "%00evil" in e["route"]]
        assert len(nul) == flooded > 0  # the poisonous ones are recorded too, escaped


async def test_access_records_made_while_postgres_is_down_are_written_when_it_is_back(
    make_settings, tmp_path: Path
) -> None:
    from gateway.app import create_app

    root = Path(tempfile.mkdtemp(prefix="govshare-outage-pg-"))
    pg = start_postgres(root / "pgdata")
    try:
        url = pg.create_database("outage")
        port, door_port = free_port(), free_port()
        settings = make_settings(
            database_url=url,
            admin_password="Admin-Passw0rd-for-tests",
            access_journal_dir=str(tmp_path / "journal" / "door-access"),
        )
        app = create_app(settings)
        layout = door_layout(tmp_path, door_port, f"http://127.0.0.1:{port}", settings.service_urls)
        async with serve(app, port), httpx.AsyncClient(base_url=f"http://127.0.0.1:{door_port}", timeout=10) as http:
            with running_door(layout):
                assert (await http.get("/api/v1/catalog/resources/before")).status_code == 401
                await access_events(app)
                pg.stop()
                for n in range(62):
                    r = await http.get(f"/api/v1/catalog/resources/outage-{n}")
                    assert r.status_code == 401  # refusing needs no database; recording must not need it either
                shipper = app.state.access_shipper

                async def database_lost() -> bool:
                    return not shipper.database_reachable

                async def database_back() -> bool:
                    return shipper.database_reachable and not shipper.pending

                await eventually(database_lost, timeout=20)
                pg = start_postgres(root / "pgdata")  # the same data and socket: the gateway's URL holds
                await eventually(database_back, timeout=60)
                events = await access_events(app)
        routes = [e["route"] for e in events]
        assert routes.count("/api/v1/catalog/resources/before") == 1
        assert sorted(r for r in routes if "outage-" in r) == sorted(
            f"/api/v1/catalog/resources/outage-{n}" for n in range(62)
        )
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def gateway_process(settings: Any, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The gateway as its own process (uvicorn, as `govshare up` runs it), configured like `settings`."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):
            value = secret.get_secret_value()
        if value is not None:
            env[f"GOVSHARE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    argv = [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory", "--port", str(port)]
    with log.open("ab") as out:
        return subprocess.Popen([*argv, "--no-access-log"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_n_mixed_requests_give_n_access_records_when_the_gateway_is_killed_midway(
    make_settings, tmp_path: Path
) -> None:
    """Every request through the door, whatever its outcome, and whether or not the gateway was there to
    decide or ship it, is one access record: a gateway killed (SIGKILL) in the middle and started again
    ships what it had not, once."""
    from gateway.app import create_app

    settings = make_settings(
        admin_password="Admin-Passw0rd-for-tests", access_journal_dir=str(tmp_path / "journal" / "door-access")
    )
    port, door_port = free_port(), free_port()
    layout = door_layout(tmp_path, door_port, f"http://127.0.0.1:{port}", settings.service_urls)
    mixed = [
        ("GET", "/.well-known/jwks.json", None),  # the gateway's own route: 200
        ("GET", "/api/v1/catalog/resources", None),  # decided: 401
        ("GET", "/api/v1/identity/users", None),  # the gateway's own route: 401
        ("GET", "/api/v1/catalog/open", b"x"),  # refused by nginx itself: 400 (a read with a body)
        ("POST", "/api/v1/catalog/resources", b"x" * (11 * 1024 * 1024)),  # refused by nginx itself: 413
    ]
    ids: list[str] = []
    statuses: list[int] = []

    async def send_round(http: httpx.AsyncClient, n: int) -> None:
        for method, path, body in mixed:
            r = await http.request(method, f"{path}?n={n}", content=body)
            ids.append(r.headers["x-request-id"])
            statuses.append(r.status_code)

    gateway = gateway_process(settings, port, tmp_path / "gateway.log")
    try:
        with running_door(layout):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{door_port}", timeout=20) as http:

                async def gateway_up() -> bool:
                    r = await http.get("/.well-known/jwks.json", headers={"x-request-id": "warm-up"})
                    return r.status_code == 200

                await eventually(gateway_up, timeout=120)  # a gateway starting on two busy cores
                for n in range(10):
                    await send_round(http, n)
                gateway.kill()  # mid-way: whatever it had not shipped is only in nginx's lines
                gateway.wait()
                for n in range(10, 14):
                    await send_round(http, n)  # no gateway: the calls it would decide or serve get 503
                gateway = gateway_process(settings, port, tmp_path / "gateway.log")
                await eventually(gateway_up, timeout=120)
                for n in range(14, 20):
                    await send_round(http, n)
        gateway.terminate()
        gateway.wait()
        reader = create_app(settings)
        async with serve(reader, port):
            events = await access_events(reader)
    finally:
        gateway.kill()
    sent = set(ids)
    recorded = [e["request_id"] for e in events if e["request_id"] in sent]
    assert len(sent) == len(ids) == 100
    assert sorted(recorded) == sorted(ids), "every request is recorded exactly once"
    assert {200, 400, 401, 413, 503} <= set(statuses)
    by_id = {e["request_id"]: e for e in events}
    assert {by_id[i]["status"] for i in ids} == set(statuses)


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data  # a streamed body: httpx sends it chunked, with no Content-Length


def sink_upstream() -> FastAPI:
    app = FastAPI()

    @app.post("/api/v1/exchange/resources/{code:path}/files")
    async def upload(code: str, request: Request) -> JSONResponse:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return JSONResponse({"received": size}, status_code=201)

    return app


async def test_a_400_mb_chunked_upload_is_refused_at_the_limit_without_the_door_holding_it(platform) -> None:
    async with platform("gateway", "catalog") as p:
        gw = p.apps["gateway"]
        upstream_port = int(gw.state.settings.service_urls["exchange"].rsplit(":", 1)[1])
        async with serve(sink_upstream(), upstream_port), p.client() as http:
            admin_token = await p.token()
            await seed_identities(http, admin_token, departments())
            psb_admin = {"Authorization": f"Bearer {await p.token('gaj_admin', DEMO_PASSWORD)}"}
            code = await publish(
                http, RESOURCE, dept_admin=psb_admin, platform_admin={"Authorization": f"Bearer {admin_token}"}
            )

            async def door_knows() -> bool:
                return code in gw.state.live.resources

            await eventually(door_knows)
            files = f"/api/v1/exchange/resources/{quote(code, safe='')}/files"
            small = await http.post(f"{files}?name=a.bin", content=one_chunk(b"x" * 1000), headers=psb_admin)
            assert small.status_code == 201 and small.json() == {"received": 1000}

            block = b"\0" * (1024 * 1024)

            async def four_hundred_mb() -> AsyncIterator[bytes]:
                for _ in range(400):
                    yield block

            assert p.door is not None and p.door.pid is not None
            door = psutil.Process(p.door.pid)

            def door_memory() -> int:
                return sum(proc.memory_info().rss for proc in [door, *door.children(recursive=True)])

            before = door_memory()
            peak = before

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, door_memory())
                    await asyncio.sleep(0.02)

            watcher = asyncio.create_task(watch())
            try:
                big: httpx.Response | None = await http.post(
                    f"{files}?name=big.bin", content=four_hundred_mb(), headers=psb_admin, timeout=120
                )
            except (httpx.RemoteProtocolError, httpx.WriteError):
                big = None  # the door may close the connection while the client still sends: also a refusal
            finally:
                watcher.cancel()
            if big is not None:
                assert big.status_code == 413 and big.json()["code"] == "too_large"
            assert peak - before < 20 * 1024 * 1024, f"the door held {(peak - before) >> 20} MB of the upload"

            async def refusal_recorded() -> list[dict[str, Any]]:
                # nginx writes the line when it has finished with the connection, a moment after the client
                # saw the refusal (or lost the connection)
                events = await access_events(gw)
                return [e for e in events if e["route"].endswith("/files") and e["status"] == 413]

            refused = await eventually(refusal_recorded)
            assert len(refused) == 1 and refused[0]["reason"] == "too_large"
