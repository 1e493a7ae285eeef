"""How every govshare service boots: one FastAPI app per service with the same shape.

`create_service_app(spec)` gives a service its database (migrated at start), outbox relay, consumers,
periodic jobs, error handlers, /healthz, /readyz, /metrics, its outbox feed, and telemetry. A service's own
app.py only declares what is special about it in a ServiceSpec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govshare_common.auth import TokenVerifier
from govshare_common.bounds import BIGINT_MAX
from govshare_common.calendar_store import PLATFORM_EVENTS, CalendarService, calendar_subscription
from govshare_common.clock import Clock, SystemClock
from govshare_common.consumer import ConsumerRunner, FeedClient, Inbox, Subscription
from govshare_common.db import Database, UnitOfWork, make_engine
from govshare_common.envelope_signing import EnvelopeSigner, EnvelopeVerifier, signing_key_for
from govshare_common.error_handlers import install_error_handlers
from govshare_common.errors import AppError
from govshare_common.events import EventRegistry, source_uri
from govshare_common.heap import settle_after_startup
from govshare_common.input_guard import InputGuardMiddleware
from govshare_common.internal_auth import require_internal
from govshare_common.jobs import Job, JobRunner
from govshare_common.kafka import EventProducer, broker_reachable, security_from_settings
from govshare_common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from govshare_common.migrations import upgrade
from govshare_common.outbox import OutboxRelay, feed_bounds, lock_key, partition_heads, prune_outbox, read_feed
from govshare_common.pipeline_admin import quarantine_router
from govshare_common.profiles import load_profile
from govshare_common.purpose_keys import MasterSecretRefused
from govshare_common.quarantine import PIPELINE_EVENTS
from govshare_common.revocations import Revocations, following_identity, prune_revocations
from govshare_common.settings import Settings, to_async_url
from govshare_common.tracing import ServerSpanMiddleware, exporting_spans, setup_logging, setup_tracing

log = logging.getLogger("govshare.service")


@dataclass
class ServiceSpec:
    name: str  # short name: gateway, catalog, request, exchange, audit, connector, console
    title: str  # Chinese title for the OpenAPI document
    migrations_dir: Path
    registry: EventRegistry = field(default_factory=EventRegistry)
    routers: list[APIRouter] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    # Called at start-up after migrations, with the app (to build service state on app.state).
    on_startup: list[Callable[[FastAPI], Any]] = field(default_factory=list)
    # Run right after migrations on the schema owner's connection (the same transaction is not promised),
    # e.g. to grant a narrower runtime role what it needs: `hook(conn, settings)`.
    on_migrated: list[Callable[[AsyncConnection, Settings], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[FastAPI], Any]] = field(default_factory=list)
    uses_database: bool = True
    uses_broker: bool = True
    # The gateway owns the calendar master; everyone else follows its calendar events.
    follows_calendar: bool = True
    # Every service but the gateway (which keeps its own live state) follows ended sessions and disabled
    # principals, so its port refuses the tokens the door refuses.
    follows_identity: bool = True
    # The gateway's app class serves its proxied paths ahead of FastAPI's middleware stack.
    app_class: type[FastAPI] = FastAPI

    @property
    def schema(self) -> str:
        return self.name


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work: commits after the handler returns, rolls back if it raises."""
    async with request.app.state.db.unit_of_work() as uow:
        yield uow


# scope="function": commit before the response is sent, so a failed commit is an error answer, not a lie.
UoW = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def database_dsn(settings: Settings) -> str:
    """asyncpg's own DSN form (the relay keeps a raw connection for LISTEN and its advisory lock)."""
    return to_async_url(settings.database_url).replace("postgresql+asyncpg://", "postgresql://", 1)


def _platform_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", tags=["platform"], summary="进程存活")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @router.get("/readyz", tags=["platform"], summary="数据库与消息代理可达")
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        if spec.uses_database:
            try:
                await asyncio.wait_for(request.app.state.db.ping(), 2.0)
                checks["database"] = "ok"
            except Exception as exc:
                checks["database"] = f"unreachable: {type(exc).__name__}"
        settings: Settings = request.app.state.settings
        if spec.uses_broker:
            reachable = await broker_reachable(settings.kafka_bootstrap_servers)
            checks["broker"] = "ok" if reachable else "unreachable"
        if not request.app.state.started:
            checks["startup"] = "in progress"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "service": spec.name, "checks": checks}, status_code=200 if ready else 503)

    @router.get("/metrics", tags=["platform"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if spec.uses_database:

        @router.get("/internal/events", tags=["platform"], summary="本服务事件源（仅限平台内部）")
        async def feed(
            request: Request,
            _caller: Annotated[str, Depends(require_internal)],
            after: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
            limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
            partition: Annotated[int | None, Query(ge=0, le=10_000)] = None,
            snapshot: bool = False,
        ) -> dict[str, Any]:
            """Events after a seq, of one partition or all. Past the retention window only each aggregate's
            newest event is kept: a reader that is behind gets 410 unless it asks for that snapshot."""
            async with request.app.state.db.engine.connect() as conn:
                bounds = await feed_bounds(conn, partition)
                if after < bounds.pruned_through and not snapshot:
                    raise AppError(
                        "所请求的事件已超过保留期，无法补齐；请以快照方式（snapshot=true）重建。",
                        "Events after this position are past the outbox retention window; rebuild from the "
                        "snapshot (snapshot=true).",
                        code="feed_gone",
                        status=410,
                        details={"after": after, "pruned_through": bounds.pruned_through},
                    )
                events = await read_feed(
                    conn, source=source_uri(spec.name), after=after, limit=limit, partition=partition
                )
            return {"events": events, "head": bounds.head, "pruned_through": bounds.pruned_through}

        @router.get("/internal/events/heads", tags=["platform"], summary="本服务各分区最新事件序号（仅限平台内部）")
        async def feed_heads(request: Request, _caller: Annotated[str, Depends(require_internal)]) -> dict[str, Any]:
            """One cheap answer for a reader with nothing to fetch: every partition's head, so it asks for
            events only where there are some past its cursor."""
            async with request.app.state.db.engine.connect() as conn:
                heads = await partition_heads(conn)
            return {"heads": {str(p): seq for p, seq in sorted(heads.items())}}

        @router.get("/internal/event-types", tags=["platform"], summary="本服务发出的事件类型及其数据结构")
        async def event_types(_caller: Annotated[str, Depends(require_internal)]) -> dict[str, Any]:
            return spec.registry.schemas()

    return router


def create_service_app(spec: ServiceSpec, settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    # Refused here, before anything starts: a platform running on a missing, known or short secret would sign
    # and hash everything with a key anyone could have.
    try:
        settings.purpose_keys()
    except MasterSecretRefused as exc:
        raise SystemExit(f"govshare {spec.name}: {exc}") from None
    clock = clock or SystemClock()
    setup_logging(spec.name, settings.log_level, settings.log_json)
    setup_tracing(spec.name)
    profile = load_profile(settings.profile, settings.profile_file)
    spec.registry.merge(PLATFORM_EVENTS)
    spec.registry.merge(PIPELINE_EVENTS)
    kafka_security = security_from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[Any]] = []
        producer: EventProducer | None = None
        runner: ConsumerRunner | None = None
        feed: FeedClient | None = None
        engine = None
        try:
            if spec.uses_database:
                await _migrate(spec, settings)
                engine = make_engine(settings.database_url, pool_size=settings.database_pool_size, schema=spec.schema)
                _instrument_engine(engine)
                db = Database(
                    engine, schema=spec.schema, source=source_uri(spec.name), registry=spec.registry, clock=clock
                )
                app.state.db = db
                app.state.calendar = CalendarService(db)
                await app.state.calendar.reload()

                producer = EventProducer(
                    settings.kafka_bootstrap_servers, partitions=settings.topic_partitions, security=kafka_security
                )
                relay = OutboxRelay(
                    dsn=database_dsn(settings),
                    schema=spec.schema,
                    source=source_uri(spec.name),
                    topic=settings.topic(spec.name),
                    producer=producer,
                    signer=EnvelopeSigner(signing_key_for(settings.purpose_keys(), spec.name)),
                    partitions=settings.topic_partitions,
                    batch_size=settings.relay_batch_size,
                )
                app.state.relay = relay
                tasks.append(asyncio.create_task(relay.run(), name="outbox-relay"))

                subscriptions = list(spec.subscriptions)
                if spec.follows_identity:
                    revocations = Revocations()
                    await revocations.load(db)
                    app.state.revocations = revocations
                    subscriptions = following_identity(subscriptions, revocations)
                    tasks.append(asyncio.create_task(revocations.keep_loaded(db), name="revocations-reload"))
                if spec.follows_calendar:
                    subscriptions = _with_calendar(subscriptions, app.state.calendar)
                if subscriptions:
                    feed = FeedClient(
                        {s.source: settings.internal_url(s.source) for s in subscriptions},
                        keys=settings.purpose_keys(),
                        caller=spec.name,
                    )
                    inbox = Inbox(db, feed, spec.name, subscriptions)
                    app.state.inbox = inbox
                    runner = ConsumerRunner(
                        inbox,
                        bootstrap=settings.kafka_bootstrap_servers,
                        group_id=f"{settings.topic_prefix}.{spec.name}",
                        topics={s.source: settings.topic(s.source) for s in subscriptions},
                        verifier=EnvelopeVerifier(
                            {s.source: signing_key_for(settings.purpose_keys(), s.source) for s in subscriptions}
                        ),
                        partitions=settings.topic_partitions,
                        catchup_interval=settings.catchup_interval_seconds,
                        security=kafka_security,
                        session_timeout_ms=settings.consumer_session_timeout_ms,
                    )
                    app.state.consumer = runner
                    tasks.append(asyncio.create_task(runner.run(), name="consumer"))

                jobs = [*spec.jobs, _outbox_pruning_job(settings)]
                if spec.follows_identity:
                    jobs.append(Job("revocation-retention", 3600.0, prune_revocations))
                app.state.jobs = JobRunner(db, spec.name, jobs, intervals=settings.job_intervals)
                tasks.extend(app.state.jobs.start())
            for hook in spec.on_startup:
                result = hook(app)
                if asyncio.iscoroutine(result):
                    await result
            settle_after_startup()
            app.state.started = True
            log.info("%s started", spec.name)
            yield
        finally:
            app.state.started = False
            for hook in spec.on_shutdown:
                with contextlib.suppress(Exception):
                    result = hook(app)
                    if asyncio.iscoroutine(result):
                        await result
            if runner is not None:
                await runner.stop()
            running_relay: OutboxRelay | None = getattr(app.state, "relay", None)
            if running_relay is not None:
                running_relay.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            if producer is not None:
                await producer.stop()
            if feed is not None:
                await feed.close()
            if engine is not None:
                await engine.dispose()

    app = spec.app_class(
        title=f"govshare {spec.name} — {spec.title}",
        version="0.1.0",
        lifespan=lifespan,
        # The request's span is ServerSpanMiddleware's; FastAPI's own would be a second, at ten times its cost.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.spec = spec
    app.state.settings = settings
    app.state.clock = clock
    app.state.profile = profile
    app.state.started = False
    jwks_url = settings.jwks_url or f"{settings.service_url('gateway')}/.well-known/jwks.json"
    app.state.verifier = TokenVerifier(
        jwks_url, issuer=settings.token_issuer, audience=settings.token_audience, leeway=settings.token_leeway_seconds
    )
    install_error_handlers(app)
    app.add_middleware(InputGuardMiddleware)  # inside the request context: its refusals carry the request id
    app.add_middleware(RequestContextMiddleware, service=spec.name)
    app.include_router(_platform_router(spec))
    if spec.uses_database:
        app.include_router(quarantine_router(spec.name))
    for router in spec.routers:
        app.include_router(router)
    _instrument_app(app)
    return app


async def _migrate(spec: ServiceSpec, settings: Settings) -> None:
    """Migrations as the schema owner: the runtime URL itself, or the owner's URL kept for start-up only."""
    owner = make_engine(settings.database_owner_url or settings.database_url, pool_size=1, schema=spec.schema)
    try:
        # On Kubernetes the Job before a rollout (`govshare migrate`) has done this; the hooks (the owner's grants
        # to a narrower runtime role) still run, being idempotent.
        if settings.migrate_at_start:
            await upgrade(owner, schema=spec.schema, migrations_dir=spec.migrations_dir)
        for hook in spec.on_migrated:
            async with owner.begin() as conn:
                # Under the migrations' lock: replicas granting the same privileges at once make PostgreSQL
                # fail one of them ("tuple concurrently updated").
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(f"migrate:{spec.schema}")})
                await hook(conn, settings)
    finally:
        await owner.dispose()


def _with_calendar(subscriptions: list[Subscription], calendar: CalendarService) -> list[Subscription]:
    gateway = next((s for s in subscriptions if s.source == "gateway"), None)
    cal = calendar_subscription(calendar)
    if gateway is None:
        return [*subscriptions, cal]
    for type_, handler in cal.handlers.items():
        gateway.handlers.setdefault(type_, handler)
    return subscriptions


def _outbox_pruning_job(settings: Settings) -> Job:
    async def prune(uow: UnitOfWork) -> None:
        removed = await prune_outbox(uow.conn, now=uow.clock.now(), retention_days=settings.outbox_retention_days)
        if removed:
            log.info("pruned %d outbox rows past %d days", removed, settings.outbox_retention_days)

    return Job("outbox-retention", 3600.0, prune)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def caller_request_id(value: str | None) -> str | None:
    """A caller's own x-request-id is kept for correlation only when it is a plain token (it goes into logs,
    upstream headers and the access record)."""
    return value if value and _REQUEST_ID.fullmatch(value) else None


class RequestContextMiddleware:
    """Request id (echoed as x-request-id) and HTTP metrics, as plain ASGI: no per-request task group."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = (
            state.get("request_id") or caller_request_id(Headers(scope=scope).get("x-request-id")) or uuid.uuid4().hex
        )
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, path).observe(time.perf_counter() - started)


def _instrument_app(app: FastAPI) -> None:
    app.add_middleware(ServerSpanMiddleware)  # outermost: the request context and its metrics inside the span


def _instrument_engine(engine: Any) -> None:
    # Spans per query come from the asyncpg driver (the SQLAlchemy instrumentor lags SQLAlchemy releases).
    # They cost ~13 % of a service's CPU and are only worth it when they leave the process.
    if not exporting_spans():
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


__all__ = ["ServiceSpec", "UoW", "create_service_app", "database_dsn", "get_clock"]
