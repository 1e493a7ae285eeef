"""connector: 前置机, the department-side agent. It talks to the platform through the gateway only.

`create_app(settings)` is the placeholder the platform stack runs under the name "connector" (health,
readiness, metrics like every service). The program a department runs is `govshare-connector run` (cli.py),
serving `connector.web.create_connector_app`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from govshare_common.clock import Clock
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="connector",
        title="前置机",
        migrations_dir=Path(__file__).parent,
        uses_database=False,
        uses_broker=False,
    )
    return create_service_app(spec, settings, clock)
