"""Cross-service fixtures: real services on real local ports, sharing the session's Postgres and broker."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from govshare_common.clock import Clock
from govshare_common.database_roles import database_settings, provision
from govshare_common.settings import Settings
from govshare_common.testing import free_port, serve
from govshare_stack.embedded import Broker, EmbeddedPostgres
from govshare_stack.front_door import FrontDoor

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules beside the tests (gateway_helpers)

from gateway_helpers import door_layout

MODULES = {
    "gateway": "gateway",
    "catalog": "catalog_svc",
    "request": "request_svc",
    "exchange": "exchange_svc",
    "audit": "audit_svc",
    "connector": "connector",
    "console": "console",
}
ADMIN_PASSWORD = "Admin-Passw0rd-for-tests"


class Platform:
    """`urls["gateway"]` is the front door (nginx); `direct` holds each app's own address."""

    def __init__(
        self, apps: dict[str, Any], urls: dict[str, str], direct: dict[str, str], door: FrontDoor | None
    ) -> None:
        self.apps = apps
        self.urls = urls
        self.direct = direct
        self.door = door

    def client(self, name: str = "gateway", **kw: Any) -> httpx.AsyncClient:
        # Longer than the gateway's own upstream timeouts (10 s for most areas), so a slow answer on a busy
        # machine comes back as the gateway's 504 (which a test's `eventually` tries again), not as the test's own
        # read timeout.
        return httpx.AsyncClient(base_url=self.urls[name], timeout=30.0, **kw)

    async def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        async with self.client() as http:
            resp = await http.post(
                "/auth/token", data={"grant_type": "password", "username": username, "password": password}
            )
            resp.raise_for_status()
            return str(resp.json()["access_token"])


@pytest.fixture
def platform(
    make_settings: Callable[..., Settings], service_database_urls: dict[str, str], tmp_path: Path
) -> Callable[..., Any]:
    """`async with platform("gateway", "catalog") as p:` runs those services for real, each connected to the
    database as its own role; with the gateway, nginx runs in front as the door (`door={...}` changes its
    layout, e.g. read_timeouts); `clocks` gives one service a clock of its own (a request-svc living weeks ahead
    while tokens keep the real time)."""
    return platform_starter(make_settings, service_database_urls, tmp_path)


@pytest.fixture
async def other_platform(
    postgres: EmbeddedPostgres, broker: Broker, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """A second platform in the same test, as separate as two sites are: its own database, topics, master
    secret and home (federation's tests: `platform` is the city, `other_platform` the district)."""
    async with separate_site(postgres, broker, tmp_path / "other", "other-platform-test-secret-fedcba9876543210") as s:
        yield s


@pytest.fixture(scope="module")
async def module_sites(
    postgres: EmbeddedPostgres, broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Callable[[str], Any]]:
    """`module_sites("city")`: a platform starter as separate as `other_platform`'s, kept for the whole module, so
    a module's tests share platforms started once (each name its own database, topics, master secret, home)."""
    async with AsyncExitStack() as stack:

        async def site(name: str) -> Callable[..., Any]:
            home = tmp_path_factory.mktemp(name)
            return await stack.enter_async_context(
                separate_site(postgres, broker, home, f"{name}-platform-test-secret-0123456789abcdef")
            )

        yield site


@asynccontextmanager
async def separate_site(
    postgres: EmbeddedPostgres, broker: Broker, home: Path, master_secret: str
) -> AsyncIterator[Callable[..., Any]]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    urls = await provision(url, lambda login: f"test-{login}-password")
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": url,
            "kafka_bootstrap_servers": broker.bootstrap_servers,
            "topic_prefix": prefix,
            "master_secret": master_secret,
            "catchup_interval_seconds": 0.5,
            "log_json": False,
            "home": str(home / "home"),
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    yield platform_starter(build, urls, home)
    try:
        postgres.drop_database(name)
    except Exception:
        pass  # connections may linger a moment after a test; the session's pgdata is thrown away anyway


def platform_starter(
    make_settings: Callable[..., Settings], service_database_urls: dict[str, str], tmp_path: Path
) -> Callable[..., Any]:

    @asynccontextmanager
    async def start(
        *names: str,
        clock: Clock | None = None,
        clocks: dict[str, Clock] | None = None,
        door: dict[str, Any] | None = None,
        **settings: Any,
    ) -> AsyncIterator[Platform]:
        ports = {n: free_port() for n in [*MODULES, "gateway-internal"]}
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}  # "gateway" is the door
        direct = {**urls, "gateway": f"http://127.0.0.1:{free_port()}"}
        journal = tmp_path / "journal" / "door-access"
        settings.setdefault("access_journal_dir", str(journal))
        # Peers address this platform at its door, and sign that address.
        settings.setdefault("federation_public_url", urls["gateway"])
        apps: dict[str, Any] = {}
        front: FrontDoor | None = None
        async with AsyncExitStack() as stack:
            for name in names:
                if name == "gateway-internal":
                    continue
                module = importlib.import_module(f"{MODULES[name]}.app")
                own_role = database_settings(name, service_database_urls)
                cfg = make_settings(service_urls=urls, admin_password=ADMIN_PASSWORD, **{**own_role, **settings})
                apps[name] = module.create_app(cfg, (clocks or {}).get(name, clock))
                await stack.enter_async_context(serve(apps[name], int(direct[name].rsplit(":", 1)[1])))
            if "gateway" in names:
                front = FrontDoor(door_layout(tmp_path, ports["gateway"], direct["gateway"], direct, **(door or {})))
                front.start()
                stack.callback(front.stop)
            shown = [*names, "gateway-internal"] if "gateway" in names else list(names)
            yield Platform(apps, {n: urls[n] for n in shown}, {n: direct[n] for n in shown}, front)

    return start
