"""Session-wide real components for every test: one embedded PostgreSQL and one Tansu broker.

Tests get isolation from a fresh database (`database_url`) and a fresh topic prefix (`settings`), never from
stand-ins.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import hypothesis
import pytest

from govshare_common.database_roles import provision
from govshare_common.settings import Settings
from govshare_common.testing import TokenIssuer
from govshare_stack.embedded import Broker, EmbeddedPostgres, start_broker, start_postgres

os.environ.setdefault("GOVSHARE_LOG_JSON", "false")

# Two cores shared with a Postgres server, a broker and the services under test: wall-clock deadlines on
# single examples would make property tests flaky without making them any stricter.
hypothesis.settings.register_profile("govshare", deadline=None, print_blob=True)
hypothesis.settings.load_profile("govshare")


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's tmp tree: pytest re-chmods that to 0700 whenever a session starts, and the server
    # runs as its own OS user when we are root.
    root = Path(tempfile.mkdtemp(prefix="govshare-test-pg-"))
    pg = start_postgres(root / "pgdata")
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_broker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def database_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A new, empty database for this test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    yield url
    try:
        postgres.drop_database(name)
    except Exception:
        pass  # connections may linger a moment after a test; the session's pgdata is thrown away anyway


@pytest.fixture
async def service_database_urls(database_url: str) -> dict[str, str]:
    """This test's database with every service's own role (govshare_common.database_roles): login -> URL."""
    return await provision(database_url, lambda login: f"test-{login}-password")


@pytest.fixture
def make_settings(database_url: str, broker: Broker, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for services in this test: its own database, its own topics, its own home folder (the
    gateway's access journal lives there), given service URLs."""
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url,
            "kafka_bootstrap_servers": broker.bootstrap_servers,
            "topic_prefix": prefix,
            "master_secret": "test-internal-secret-0123456789abcdef",
            "catchup_interval_seconds": 0.5,
            "log_json": False,
            "home": str(tmp_path / "home"),
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "govshare-home"


@pytest.fixture
async def issuer() -> AsyncIterator[TokenIssuer]:
    """A real local token issuer (JWKS over HTTP) for testing one service without the gateway."""
    async with TokenIssuer().running() as running:
        yield running
