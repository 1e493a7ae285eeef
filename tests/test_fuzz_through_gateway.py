"""schemathesis against every service's OpenAPI document through the gateway, on the real platform seeded with
the demo data, as the platform office and as a department: no input may give a 5xx or an answer its
document does not describe (issue 11, point 5)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from govshare_common.testing import eventually
from govshare_stack.demo import DemoContext
from govshare_stack.demo_steps import catalog, identities, records, requests

from gateway.demo import DEMO_PASSWORD

SERVICES = ("gateway", "catalog", "request", "exchange", "audit")
# One run per token, both at once: together they stay within about two minutes on two shared cores. A deeper
# hunt: GOVSHARE_FUZZ_EXAMPLES=50 GOVSHARE_FUZZ_SECONDS=600 make test ARGS=tests/test_fuzz_through_gateway.py
MAX_EXAMPLES = int(os.environ.get("GOVSHARE_FUZZ_EXAMPLES", "5"))
SECONDS_PER_RUN = int(os.environ.get("GOVSHARE_FUZZ_SECONDS", "50"))
# Calls that would end the fuzzer's own session or lock it out; they are tested by hand elsewhere.
EXCLUDED_PATHS = r"^/auth/(logout|password)$|^/api/v1/identity/users/\{user_id\}$"


async def _seed_demo(p: Any, http: httpx.AsyncClient, home: Path) -> None:
    admin_password = p.apps["gateway"].state.settings.admin_password.get_secret_value()
    ctx = DemoContext(gateway_url=p.urls["gateway"], client=http, admin_password=admin_password, home=home)
    await identities(ctx)
    await catalog(ctx)

    async def gateway_and_exchange_know_the_catalog() -> bool:
        async with p.apps["exchange"].state.db.engine.connect() as conn:
            hosted = (await conn.execute(text("SELECT count(*) FROM resource"))).scalar()
        return bool(hosted) and len(p.apps["gateway"].state.live.resources) >= hosted

    await eventually(gateway_and_exchange_know_the_catalog, timeout=60.0)
    await records(ctx)  # retries until the door and exchange-svc have learnt the catalog
    await requests(ctx)


async def _fuzz(document: dict[str, Any], base_url: str, token: str, workdir: Path, name: str) -> tuple[int, str]:
    schema_file = workdir / f"{name}.json"
    schema_file.write_text(json.dumps(document, ensure_ascii=False))
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        str(schema_file),
        "--url",
        base_url,
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(SECONDS_PER_RUN),
        "--exclude-path-regex",
        EXCLUDED_PATHS,
        "--no-shrink",
        "--seed",
        "20261201",
        "--warnings",
        "off",
        # One worker: schemathesis' threads trip a CPython 3.11 AST bug ("recursion depth mismatch").
        "--workers",
        "1",
    ]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workdir,  # its example database stays out of the repository
        env={**os.environ, "NO_COLOR": "1"},
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _through_the_door(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One document of every service's API as a caller reaches it through the door (platform routes stay on
    each service's port); component names get their service's prefix, as two services may use the same."""
    merged: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": "govshare", "version": "0"}, "paths": {}}
    schemas: dict[str, Any] = {}
    for service, document in documents.items():
        prefix = f"{service}_"
        renamed = json.loads(json.dumps(document).replace('"#/components/schemas/', f'"#/components/schemas/{prefix}'))
        merged["paths"].update({p: ops for p, ops in renamed["paths"].items() if p.startswith(("/api/v1/", "/auth/"))})
        schemas.update({prefix + k: v for k, v in renamed.get("components", {}).get("schemas", {}).items()})
    merged["components"] = {"schemas": schemas}
    return merged


async def test_no_input_through_the_gateway_gives_a_server_error(platform: Any, tmp_path: Path) -> None:
    async with platform(*SERVICES) as p, p.client() as http:
        # One user's fuzzing must not wait on the per-user rate limit (its refusals are tested in test_gateway).
        p.apps["gateway"].decision.default_rate = 1e6  # the fuzzer is one caller sending as fast as it can
        p.apps["gateway"].decision.default_burst = 1_000_000
        await _seed_demo(p, http, tmp_path)
        tokens = {"platform_office": await p.token(), "department": await p.token("gaj_admin", DEMO_PASSWORD)}
        document = _through_the_door({service: p.apps[service].openapi() for service in SERVICES})
        runs = await asyncio.gather(
            *(_fuzz(document, p.urls["gateway"], token, tmp_path, who) for who, token in tokens.items())
        )
        failures = []
        for who, (code, out) in zip(tokens, runs, strict=True):
            if code != 0:
                failures.append(f"===== as {who} =====\n{out[-8000:]}")
        assert not failures, "\n".join(failures)
