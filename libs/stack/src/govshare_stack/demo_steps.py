"""The demo jurisdiction, step by step: 钟楼区 with its platform office and departments.

Each service keeps its own demo data next to its code (`<service>/demo.py`, a plain `seed` through the public
API); this module is the one place that says in which order they run and who logs in for each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from govshare_stack.demo import DemoContext, demo_step

# The platform office (大数据管理中心) administers the platform; the catalog's demo departments hold data.
PLATFORM_OFFICE = ("11320404MB12345007", "常州市钟楼区大数据管理中心", "dsj")
USERNAME_PREFIX = {"公安局": "gaj", "市场监管局": "scjg", "人社局": "rsj", "民政局": "mzj", "卫健局": "wjj"}


def departments() -> list[tuple[str, str, str]]:
    from govshare_common.identifiers import uscc_check_char

    from catalog_svc.demo import DEMO_DEPARTMENTS

    office_code = PLATFORM_OFFICE[0][:17] + uscc_check_char(PLATFORM_OFFICE[0][:17])
    return [(office_code, PLATFORM_OFFICE[1], PLATFORM_OFFICE[2])] + [
        (d.code, d.name, USERNAME_PREFIX[d.short]) for d in DEMO_DEPARTMENTS
    ]


async def login(ctx: DemoContext, username: str, password: str) -> str:
    r = await ctx.client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def _merge(ctx: DemoContext, made: dict[str, Any]) -> None:
    for kind, entries in made.items():
        ctx.credentials.setdefault(kind, {}).update(entries)


@demo_step(10, "gateway.identities")
async def identities(ctx: DemoContext) -> None:
    from gateway.demo import seed

    ctx.credentials.setdefault("users", {})["admin"] = {"password": ctx.admin_password, "roles": ["platform_admin"]}
    _merge(ctx, await seed(ctx.client, await login(ctx, "admin", ctx.admin_password), departments()))


@demo_step(15, "gateway.hosted_jurisdiction")
async def hosted_jurisdiction(ctx: DemoContext) -> None:
    """肥城市, which runs no platform of its own (001 Art.6), hosted with its own rules beside the host's."""
    from gateway.demo import seed_hosted

    _merge(ctx, await seed_hosted(ctx.client, await login(ctx, "admin", ctx.admin_password)))


async def department_admin_tokens(ctx: DemoContext) -> dict[str, str]:
    """What every service's `seed(http, tokens)` takes: a dept_admin token per department code, and the
    platform office's under "platform_admin"."""
    from gateway.demo import DEMO_PASSWORD

    tokens = {"platform_admin": await login(ctx, "admin", ctx.admin_password)}
    for code, _name, short in departments()[1:]:
        tokens[code] = await login(ctx, f"{short}_admin", DEMO_PASSWORD)
    return tokens


@demo_step(20, "catalog.resources")
async def catalog(ctx: DemoContext) -> None:
    from catalog_svc.demo import seed

    await seed(ctx.client, await department_admin_tokens(ctx))


async def once_projections_caught_up(seed: Callable[[], Awaitable[Any]], *, within: float = 120.0) -> None:
    """Run an idempotent seed that depends on another service's events, retrying while its service has not
    yet learnt them (a fresh platform publishes the catalog a moment before request-svc has read it; on a
    loaded machine that moment can be long, hence a bound in time, not in attempts)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await seed()
            return
        except (RuntimeError, httpx.HTTPStatusError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


@demo_step(25, "exchange.records")
async def records(ctx: DemoContext) -> None:
    from exchange_svc.demo import seed

    tokens = await department_admin_tokens(ctx)
    # The seed waits for exchange-svc to learn the catalog; the door learns it from the same events a moment
    # apart, and refuses the batches until then (a resent batch id is a no-op, so retrying is safe).
    await once_projections_caught_up(lambda: seed(ctx.client, tokens))


@demo_step(30, "request.requests")
async def requests(ctx: DemoContext) -> None:
    from request_svc.demo import seed

    tokens = await department_admin_tokens(ctx)
    await once_projections_caught_up(lambda: seed(ctx.client, tokens))


@demo_step(40, "connector.departments")
async def connectors(ctx: DemoContext) -> None:
    from connector.demo import seed

    await seed(ctx.client, admin_password=ctx.admin_password, credentials=ctx.credentials, home=ctx.home)
