"""Connector journeys: the real gateway, catalog-svc, request-svc and exchange-svc on real ports (exchange-svc
can be stopped and started again mid-test, as in an outage), a real department database on the session's
embedded PostgreSQL with logical decoding, and the connector itself, in process or as its own program."""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from govshare_common.settings import Settings
from govshare_common.testing import free_port, serve
from govshare_stack.front_door import FrontDoor

from gateway.door_conf import DoorLayout

sys.path.insert(0, str(Path(__file__).parent))

MODULES = {"gateway": "gateway", "catalog": "catalog_svc", "request": "request_svc", "exchange": "exchange_svc"}
ADMIN_PASSWORD = "Admin-Passw0rd-for-tests"


class Platform:
    """`urls["gateway"]` is the front door (nginx) in front of the gateway and the services, as in production."""

    def __init__(self, urls: dict[str, str], settings: Callable[..., Settings], folder: Path) -> None:
        self.urls = urls
        self.direct = {**urls, "gateway": f"http://127.0.0.1:{free_port()}"}
        self.apps: dict[str, Any] = {}
        self._stacks: dict[str, AsyncExitStack] = {}
        self._settings = settings
        self.journal = folder / "journal" / "door-access"
        self.door = FrontDoor(
            DoorLayout(
                listen_port=int(urls["gateway"].rsplit(":", 1)[1]),
                gateway_url=self.direct["gateway"],
                service_urls=self.direct,
                access_log=self.journal / "current.jsonl",
                error_log=folder / "door-error.log",
                worker_processes=1,
            )
        )

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    async def start(self, name: str) -> None:
        module = importlib.import_module(f"{MODULES[name]}.app")
        cfg = self._settings(
            service_urls=self.urls, admin_password=ADMIN_PASSWORD, access_journal_dir=str(self.journal)
        )
        stack = AsyncExitStack()
        self.apps[name] = module.create_app(cfg)
        await stack.enter_async_context(serve(self.apps[name], int(self.direct[name].rsplit(":", 1)[1])))
        self._stacks[name] = stack

    async def stop(self, name: str) -> None:
        await self._stacks.pop(name).aclose()

    async def close(self) -> None:
        self.door.stop()
        for name in list(self._stacks)[::-1]:
            await self.stop(name)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.gateway_url, timeout=20.0)

    async def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        async with self.client() as http:
            r = await http.post(
                "/auth/token", data={"grant_type": "password", "username": username, "password": password}
            )
            r.raise_for_status()
            return str(r.json()["access_token"])


@pytest.fixture
def platform(make_settings: Callable[..., Settings], tmp_path: Path) -> Callable[[], Any]:
    @asynccontextmanager
    async def start() -> AsyncIterator[Platform]:
        urls = {
            n: f"http://127.0.0.1:{free_port()}"
            for n in (*MODULES, "audit", "connector", "console", "gateway-internal")
        }
        p = Platform(urls, make_settings, tmp_path)
        try:
            # The door first: its port was only picked, and another test's server binding port 0 meanwhile
            # could take it (a run got that server's 404 from /auth/token).
            p.door.start()
            for name in MODULES:
                await p.start(name)
            yield p
        finally:
            await p.close()

    return start
