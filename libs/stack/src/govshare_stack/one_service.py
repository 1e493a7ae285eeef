"""One service per process, as a container runs it: `govshare service NAME` and `govshare migrate`.

`govshare up` supervises every service on one machine; a Kubernetes Deployment runs one of them, named, on the
port its manifest gives, with migrations already applied by a Job before the rollout (GOVSHARE_MIGRATE_AT_START
is false there), so replicas never race to change a schema at boot.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from govshare_stack.errors import StackError
from govshare_stack.supervisor import SERVICES, ServiceSpec

WEB_SERVICES = {s.name: s for s in SERVICES}


def spec_of(name: str) -> ServiceSpec:
    try:
        return WEB_SERVICES[name]
    except KeyError:
        raise StackError(f"no service named {name!r}; choose one of {', '.join(WEB_SERVICES)}") from None


def migrations_of(spec: ServiceSpec) -> Path | None:
    """A service's Alembic folder (`<module>/migrations`), or None for one without a database of its own."""
    found = importlib.util.find_spec(spec.module)
    if found is None or found.origin is None:
        raise StackError(f"the service {spec.name!r} is not installed (no module {spec.module!r})")
    folder = Path(found.origin).parent / "migrations"
    return folder if (folder / "env.py").exists() else None


def serve(name: str, host: str, port: int) -> None:
    """Replace this process with uvicorn running the named service (signals reach it directly)."""
    spec = spec_of(name)
    migrations_of(spec)  # fail here, with the name, rather than inside uvicorn
    argv = spec.argv(port)
    argv[argv.index("--host") + 1] = host
    os.execv(argv[0], argv)


def serve_door(host: str, port: int, gateway_url: str, run_dir: Path, workers: int) -> None:
    """Replace this process with nginx as the front door beside one gateway: routes from the settings'
    service URLs, its access lines into the journal the gateway ships."""
    from govshare_common.settings import Settings
    from govshare_stack.front_door import run_in_foreground
    from govshare_stack.up import door_workers_from

    from gateway.door_conf import DoorLayout

    settings = Settings()
    journal = Path(settings.access_journal_dir or Path(settings.home) / "journal" / "door-access")
    run_dir.mkdir(parents=True, exist_ok=True)
    layout = DoorLayout(
        listen_port=port,
        listen_host=host,
        gateway_url=gateway_url,
        service_urls=settings.service_urls,
        access_log=journal / "current.jsonl",
        error_log=Path("/dev/stderr"),
        run_dir=run_dir,
        worker_processes=workers or door_workers_from(os.environ),
        trusted_proxies=tuple(settings.trusted_proxies),
    )
    run_in_foreground(layout)


# `govshare migrate` on Kubernetes: each service's own role's URL (GOVSHARE_DATABASE_URL_CATALOG, …), so that the
# schema it makes is that role's; without one, the schema is made as GOVSHARE_DATABASE_URL's role.
ROLE_URL_ENV = "GOVSHARE_DATABASE_URL_{}"


async def migrate(names: list[str], database_url: str, role_urls: Mapping[str, str] | None = None) -> list[str]:
    """Bring each named service's schema to its newest revision, as the service's own role where its URL is
    given (`database_url`, the database owner's, lets that role make its schema first); the schemas migrated."""
    from govshare_common.database_roles import let_role_make_its_schema, login_of
    from govshare_common.db import make_engine
    from govshare_common.migrations import upgrade

    done: list[str] = []
    for name in names or list(WEB_SERVICES):
        spec = spec_of(name)
        folder = migrations_of(spec)
        if folder is None:
            continue
        own_url = (role_urls or {}).get(spec.name)
        role = login_of(own_url) if own_url else None
        if role:
            await let_role_make_its_schema(database_url, role)
        engine = make_engine(own_url or database_url, pool_size=1, schema=spec.name)
        try:
            await upgrade(engine, schema=spec.name, migrations_dir=folder)
        finally:
            await engine.dispose()
        done.append(spec.name)
    return done


def run_migrate(names: list[str]) -> list[str]:
    from govshare_common.settings import Settings

    role_urls = {
        name: os.environ[ROLE_URL_ENV.format(name.upper())]
        for name in WEB_SERVICES
        if os.environ.get(ROLE_URL_ENV.format(name.upper()))
    }
    return asyncio.run(migrate(names, Settings().database_url, role_urls))
