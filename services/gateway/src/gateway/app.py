"""gateway: 统一身份认证与访问网关 — identity, tokens, routing, authorisation at the door, access events.

It also keeps the platform's working-day calendar master (/api/v1/platform/calendar).
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from govshare_common.clock import Clock
from govshare_common.service import ServiceSpec, create_service_app, database_dsn
from govshare_common.settings import Settings

from gateway import auth_routes, calendar_routes, door, identity_routes, jurisdiction_routes
from gateway.access_log import AccessShipper
from gateway.bootstrap import ensure_admin
from gateway.events import grants, registry, resources
from gateway.internal_listener import InternalListener
from gateway.keys import KeyRing
from gateway.live_state import LiveState
from gateway.oidc import FORWARD_TTL, OidcVerifier
from gateway.tokens import ACCESS_TOKEN_TTL, LocalVerifier


def door_journal_dir(settings: Settings) -> Path:
    """Where nginx writes its access lines and the gateway reads them."""
    return Path(settings.access_journal_dir or Path(settings.home) / "journal" / "door-access")


async def _start(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    ring = KeyRing(settings.purpose_keys(), token_lifetime=longest_token_life(settings))
    async with app.state.db.unit_of_work() as uow:
        await ring.ensure(uow.conn, now=uow.clock.now())
        admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
        await ensure_admin(uow, admin_password)
    live = LiveState(app.state.db.engine, database_dsn(settings), app.state.db.schema)
    await live.load_all()

    async def reload_keys() -> None:
        async with app.state.db.engine.connect() as conn:
            await ring.load(conn, now=app.state.clock.now())

    live.on_signing_keys.append(reload_keys)
    live.start()
    app.state.live = live
    app.state.keyring = ring
    external = OidcVerifier(settings) if settings.oidc_issuer and settings.oidc_jwks_url else None
    app.state.verifier = LocalVerifier(
        ring,
        live,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        external=external,
        leeway=settings.token_leeway_seconds,
    )
    app.state.forwarded_authorization = partial(door.forwarded_authorization, app)
    app.state.access_shipper = AccessShipper(app.state.db, door_journal_dir(settings), settings.hash_key())
    app.state.access_shipper.start()
    app.state.internal_listener = None
    if "gateway-internal" in settings.service_urls:
        app.state.internal_listener = InternalListener(app, settings.service_urls["gateway-internal"])
        await app.state.internal_listener.start()


def longest_token_life(settings: Settings) -> timedelta:
    """How long after a key stops signing a token it signed may still be honoured: the longest lifetime of a
    token the gateway issues, plus the clock leeway every verifier allows."""
    return max(ACCESS_TOKEN_TTL, FORWARD_TTL) + timedelta(seconds=settings.token_leeway_seconds)


async def _stop(app: FastAPI) -> None:
    if getattr(app.state, "internal_listener", None) is not None:
        await app.state.internal_listener.stop()
    await app.state.access_shipper.stop()
    await app.state.live.stop()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="gateway",
        title="统一身份认证与访问网关",
        migrations_dir=Path(__file__).parent / "migrations",
        registry=registry,
        routers=[auth_routes.router, identity_routes.router, jurisdiction_routes.router, calendar_routes.router],
        subscriptions=[grants, resources],
        on_startup=[_start],
        on_shutdown=[_stop],
        follows_calendar=False,
        follows_identity=False,
        app_class=door.GatewayApp,
    )
    app = create_service_app(spec, settings, clock)
    assert isinstance(app, door.GatewayApp)
    door.install_door(app)
    return app
