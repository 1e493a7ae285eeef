"""Database access: the async engine and the per-request unit of work.

A unit of work is one transaction. Whatever a handler changes and every event it emits are written together:
the events go to the service's outbox table in the same transaction, so a rollback emits nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from govshare_common.clock import Clock, SystemClock
from govshare_common.events import EventRegistry, new_event, new_event_id
from govshare_common.settings import to_async_url
from govshare_common.tracing import current_traceparent


def make_engine(url: str, *, pool_size: int = 10, schema: str | None = None) -> AsyncEngine:
    connect_args: dict[str, Any] = {"server_settings": {"application_name": f"govshare-{schema or 'tool'}"}}
    if schema:
        connect_args["server_settings"]["search_path"] = schema
    return create_async_engine(
        to_async_url(url),
        # Connections are opened as needed and kept up to pool_size; each one past it is closed as soon as it is
        # given back, so a burst beyond the pool opened and closed a connection (a PostgreSQL backend) per
        # request: ≈ 7 % of a saturated exchange-svc's request time. Kept many, few beyond.
        pool_size=pool_size,
        max_overflow=max(2, pool_size // 2),
        pool_pre_ping=False,
        connect_args=connect_args,
    )


class UnitOfWork:
    """One transaction on one connection, plus the events raised while it is open."""

    def __init__(
        self, conn: AsyncConnection, *, schema: str, source: str, registry: EventRegistry, clock: Clock
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.source = source
        self.registry = registry
        self.clock = clock
        self._pending: list[dict[str, Any]] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self._traceparent: str | bool | None = False  # not looked up yet

    async def execute(self, statement: Any, params: Any = None) -> Any:
        return await self.conn.execute(statement, params)

    def emit(self, type_: str, subject: str, data: BaseModel | dict[str, Any]) -> str:
        """Record an event; it is written to the outbox when the unit of work flushes (same transaction)."""
        payload = self.registry.validate_json(type_, data)
        event_id = new_event_id()
        if self._traceparent is False:
            self._traceparent = current_traceparent()  # one trace context per unit of work
        self._pending.append(
            new_event(
                event_id=event_id,
                source=self.source,
                type_=type_,
                subject=subject,
                time=self.clock.now(),
                traceparent=self._traceparent,  # type: ignore[arg-type]
                data=payload,
            )
        )
        return event_id

    def before_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` in this transaction just before its events are written and it commits (e.g. to
        write in one statement what several handlers collected)."""
        self._before_commit.append(callback)

    async def finish(self) -> None:
        """What closes the unit of work before its commit: the before-commit callbacks, then the outbox."""
        while self._before_commit:
            await self._before_commit.pop(0)()
        await self.flush_events()

    async def flush_events(self) -> None:
        if not self._pending:
            return
        from govshare_common.outbox import write_outbox

        rows, self._pending = self._pending, []
        await write_outbox(self.conn, self.schema, rows)


class Database:
    """The service's engine and how to open units of work on it."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        schema: str,
        source: str,
        registry: EventRegistry,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.source = source
        self.registry = registry
        self.clock = clock or SystemClock()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """Commit when the block ends normally, roll back (and emit nothing) when it raises."""
        async with self.engine.connect() as conn:
            trans = await conn.begin()
            uow = UnitOfWork(conn, schema=self.schema, source=self.source, registry=self.registry, clock=self.clock)
            try:
                yield uow
                await uow.finish()
                await trans.commit()
            except BaseException:
                if trans.is_active:
                    await trans.rollback()
                raise

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
