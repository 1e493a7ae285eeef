"""One running connector: its state database, its sources with their push loops, its subscriptions, the
heartbeat to the platform, and what the online-query endpoint serves.

Every loop retries its own failures with capped backoff and bounded calls, so no outage of the department
database, the state database or the platform stops another loop or leaves one stuck.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector import status
from connector.config import ConfigError, ConnectorConfig, SourceSection
from connector.domain import mapping
from connector.platform import Platform, PlatformRefused, PlatformUnavailable
from connector.pusher import Pusher
from connector.state import State

if TYPE_CHECKING:
    from connector.serve import Served
    from connector.sources.base import Source
    from connector.subscriber import Subscriber

log = logging.getLogger("govshare.connector")


def make_source(cfg: SourceSection, state: State) -> Source:
    # Imported by kind: a connector that only reads a WAL never loads SQLAlchemy and its drivers.
    if cfg.kind == "postgres_wal":
        from connector.sources.pg_wal import WalSource

        return WalSource(cfg, state)
    if cfg.kind == "watermark":
        from connector.sources.watermark import WatermarkSource

        return WatermarkSource(cfg, state)
    from connector.sources.staging import StagingSource

    return StagingSource(cfg, state)


async def open_state(config: ConnectorConfig) -> tuple[State, Any]:
    """The connector's state database: the configured one, else an embedded PostgreSQL under its home."""
    if config.connector.state_url:
        return await State.open(config.connector.state_url), None
    from govshare_stack.embedded import start_postgres

    pg = await asyncio.to_thread(start_postgres, Path(config.connector.home) / "pgdata")
    url = await asyncio.to_thread(pg.create_database, "connector_state")
    return await State.open(url), pg


class Connector:
    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config
        self.state: State | None = None
        self.embedded: Any = None
        self.platform = Platform(config.platform)
        self.serve_token = secrets.token_urlsafe(32)
        self.sources: list[Source] = []
        self.pushers: dict[str, Pusher] = {}
        self.subscribers: list[Subscriber] = []
        self.served: dict[str, Served] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.last_heartbeat: datetime | None = None
        self.heartbeat_error: str | None = None
        self.started = False

    async def start(self) -> None:
        self.state, self.embedded = await open_state(self.config)
        state = self.state
        self.sources = [make_source(s, state) for s in self.config.sources]
        if self.config.subscriptions:
            from connector.subscriber import Subscriber

            self.subscribers = [Subscriber(s, state, self.platform) for s in self.config.subscriptions]
        if self.config.serve:
            from connector.serve import Served

            self.served = {s.resource: Served(s) for s in self.config.serve}
        await self.check_mappings()
        for src in self.sources:
            pusher = Pusher(src.cfg, self.config.push, state, self.platform)
            self.pushers[src.cfg.name] = pusher
            self.tasks.append(asyncio.create_task(self._capture(src, pusher), name=f"capture-{src.cfg.name}"))
            self.tasks.append(asyncio.create_task(pusher.run(), name=f"push-{src.cfg.name}"))
        for sub in self.subscribers:
            self.tasks.append(asyncio.create_task(sub.run(), name=f"subscribe-{sub.cfg.name}"))
        self.tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
        self.started = True

    async def check_mappings(self) -> None:
        """Refuse to start when a mapping names a column the table lacks or an item the resource lacks."""
        problems: list[str] = []
        checks: list[tuple[str, Any, str, str, dict[str, str], list[str], str | None]] = []
        for i, src in enumerate(self.sources):
            checks.append((f"sources[{i}]", src, src.cfg.resource, src.cfg.table, src.cfg.mapping, src.cfg.key, None))
        for i, sub in enumerate(self.subscribers):
            checks.append(
                (f"subscriptions[{i}]", sub, sub.cfg.resource, sub.cfg.table, sub.cfg.mapping, [], sub.cfg.purpose)
            )
        for i, (resource, served) in enumerate(self.served.items()):
            checks.append((f"serve[{i}]", served, resource, served.cfg.table, served.cfg.mapping, [], None))
        for key, part, resource, table, cols, key_cols, purpose in checks:
            try:
                columns = await part.prepare()
            except Exception as exc:
                problems.append(f"{key}.database_url: cannot read {table}: {type(exc).__name__}: {exc}")
                continue
            if not columns:
                problems.append(f"{key}.table: the department database has no table {table}")
                continue
            described = await self._items(resource, purpose)
            if described is None:
                items: list[str] = list(cols.values())  # platform away: checked against the table only for now
            elif "problem" in described:
                problems.append(f"{key}.resource: {described['problem']}")
                continue
            else:
                items = [i["name"] for i in described["items"]]
                if key_cols and set(described.get("key_items") or []) != {cols[c] for c in key_cols}:
                    problems.append(
                        f"{key}.key: the key columns {key_cols} map to {sorted(cols[c] for c in key_cols)}, but the "
                        f"resource {resource} keys its records by {described.get('key_items')}"
                    )
            found = mapping.check(
                key=f"{key}.mapping", mapping=cols, columns=columns, items=items, resource=resource, table=table
            )
            problems.extend(p.message() for p in found)
        if problems:
            raise ConfigError(problems)

    async def _items(self, resource: str, purpose: str | None) -> dict[str, Any] | None:
        for attempt in range(3):
            try:
                return await self.platform.resource_items(resource, purpose)
            except PlatformRefused as exc:
                return {"problem": f"the platform refused to describe resource {resource}: {exc}"}
            except PlatformUnavailable as exc:
                log.warning("platform unreachable while checking %s (%s)", resource, exc)
                await asyncio.sleep(0.5 * (attempt + 1))
        return None

    async def _capture(self, src: Source, pusher: Pusher) -> None:
        delay = 0.5
        assert self.state is not None

        async def relay_wakes() -> None:
            while True:
                await src.spooled.wait()
                src.spooled.clear()
                pusher.wake.set()

        self.tasks.append(asyncio.create_task(relay_wakes(), name=f"wake-{src.cfg.name}"))
        while True:
            try:
                n = await src.poll()
                delay = 0.5
                if n:
                    pusher.wake.set()
                else:
                    await asyncio.sleep(src.cfg.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("source %s: capture failed (%s); retrying in %.1f s", src.cfg.name, exc, delay)
                try:
                    await self.state.note_error(src.cfg.name, f"capture: {type(exc).__name__}: {exc}"[:500])
                except Exception:
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def report(self) -> dict[str, Any]:
        assert self.state is not None
        return await status.build(self.state, self.config)

    async def _heartbeat(self) -> None:
        delay = self.config.platform.heartbeat_seconds
        while True:
            try:
                report = await self.report()
                status.export_metrics(report)
                await self.platform.heartbeat(
                    self.config.connector.name,
                    {
                        "serve_url": self.config.serve_url() if self.served else None,
                        "serve_token": self.serve_token if self.served else None,
                        "serves": sorted(self.served),
                        "sources": report["sources"],
                        "subscriptions": report["subscriptions"],
                    },
                )
                self.last_heartbeat = datetime.now(UTC)
                self.heartbeat_error = None
                delay = self.config.platform.heartbeat_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.heartbeat_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("heartbeat failed (%s)", self.heartbeat_error)
                delay = min(max(delay, 1.0) * 2, 60.0)
            await asyncio.sleep(delay if self.heartbeat_error else self.config.platform.heartbeat_seconds)

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            try:
                await t
            except BaseException:
                pass
        self.tasks.clear()
        parts: list[Any] = [*self.sources, *self.subscribers, *self.served.values()]
        for part in parts:
            try:
                await part.close()
            except Exception:
                pass
        await self.platform.close()
        if self.state is not None:
            await self.state.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
