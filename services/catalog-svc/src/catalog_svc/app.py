"""catalog-svc: 政务信息资源目录服务. Builds the FastAPI app from the shared service shape."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from govshare_common.clock import Clock
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

from catalog_svc.events import registry


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="catalog",
        title="政务信息资源目录服务",
        migrations_dir=Path(__file__).parent / "migrations",
        registry=registry,
    )
    return create_service_app(spec, settings, clock)
