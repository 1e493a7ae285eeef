"""What the gateway must know on every request without a round trip: revocations, grants, resources.

Held in memory, loaded from the gateway's own tables, and kept current on every replica by PostgreSQL
LISTEN/NOTIFY: whoever changes a row notifies in the same transaction, every replica reloads that row within
milliseconds. That is how a logout, a disabled client or a revoked grant stops working within a second
everywhere. A full reload every 30 s covers a missed notification.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.domain import GrantView, ResourceView

log = logging.getLogger("govshare.gateway.live")

CHANNEL = "govshare_gateway_changes"


async def notify_change(conn: Any, kind: str, key: str) -> None:
    """Call inside the transaction that made the change; delivered to every replica on commit."""
    await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": f"{kind}:{key}"})


_CONNECTION_LOST = "\x00connection-lost"


class LiveState:
    def __init__(self, engine: AsyncEngine, dsn: str, schema: str) -> None:
        self.engine = engine
        self.dsn = dsn
        self.schema = schema
        self.revoked_sessions: set[str] = set()
        self.disabled_principals: set[str] = set()
        self.grants: dict[str, GrantView] = {}
        # The door asks "which grants does this department hold for this resource" on every data request.
        self._grants_by_pair: dict[tuple[str, str], dict[str, GrantView]] = {}
        self.resources: dict[str, ResourceView] = {}
        self.client_limits: dict[str, tuple[float, int]] = {}
        # Called when a signing key rotates (and on every full reload, which also retires expired keys).
        self.on_signing_keys: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None
        # Checked by the loops as well as cancellation: Python 3.11's wait_for can swallow a cancel that arrives
        # with a notification, and a listener that missed it would keep the gateway from stopping.
        self._stopping = False

    async def limits_for(self, client_id: str) -> tuple[float | None, int | None]:
        """A client's rate and burst; one created a moment ago (its notification not yet here) is read once."""
        known = self.client_limits.get(client_id)
        if known is not None:
            return known
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT rate_per_second, burst FROM client WHERE client_id = :id"), {"id": client_id}
                )
            ).first()
        if row is None:
            return (None, None)
        self.client_limits[client_id] = (float(row.rate_per_second), int(row.burst))
        return self.client_limits[client_id]

    def grants_for(self, consumer: str, resource: str) -> list[GrantView]:
        return list(self._grants_by_pair.get((consumer, resource), {}).values())

    def _set_grants(self, grants: list[GrantView]) -> None:
        self.grants = {g.grant_id: g for g in grants}
        self._grants_by_pair = {}
        for g in grants:
            self._grants_by_pair.setdefault((g.consumer_code, g.resource_code), {})[g.grant_id] = g

    def _put_grant(self, grant_id: str, grant: GrantView | None) -> None:
        old = self.grants.pop(grant_id, None)
        if old is not None:
            self._grants_by_pair.get((old.consumer_code, old.resource_code), {}).pop(grant_id, None)
        if grant is not None:
            self.grants[grant_id] = grant
            self._grants_by_pair.setdefault((grant.consumer_code, grant.resource_code), {})[grant_id] = grant

    async def load_all(self) -> None:
        async with self.engine.connect() as conn:
            sessions = await conn.execute(
                text("SELECT id::text FROM session WHERE revoked_at IS NOT NULL AND expires_at > now()")
            )
            self.revoked_sessions = {r[0] for r in sessions}
            disabled = await conn.execute(
                text(
                    "SELECT u.id::text FROM app_user u LEFT JOIN department d ON d.code = u.department_code "
                    "WHERE u.status <> 'active' OR d.status = 'disabled' "
                    "UNION ALL SELECT c.client_id FROM client c JOIN department d ON d.code = c.department_code "
                    "WHERE c.status <> 'active' OR d.status = 'disabled'"
                )
            )
            self.disabled_principals = {r[0] for r in disabled}
            self._set_grants(await self._grants(conn, None))
            self.resources = {r.code: r for r in await self._resources(conn, None)}
            limits = await conn.execute(text("SELECT client_id, rate_per_second, burst FROM client"))
            self.client_limits = {r.client_id: (float(r.rate_per_second), int(r.burst)) for r in limits}

    async def _grants(self, conn: Any, grant_id: str | None) -> list[GrantView]:
        rows = await conn.execute(
            text(
                "SELECT grant_id, consumer_code, resource_code, purposes, valid_from, valid_until, status "
                "FROM grant_projection WHERE (CAST(:id AS text) IS NULL OR grant_id = :id)"
            ),
            {"id": grant_id},
        )
        return [
            GrantView(
                r.grant_id,
                r.consumer_code,
                r.resource_code,
                frozenset(r.purposes),
                r.valid_from,
                r.valid_until,
                r.status,
            )
            for r in rows
        ]

    async def _resources(self, conn: Any, code: str | None) -> list[ResourceView]:
        rows = await conn.execute(
            text(
                "SELECT code, provider_code, share_type, status FROM resource_projection "
                "WHERE (CAST(:code AS text) IS NULL OR code = :code)"
            ),
            {"code": code},
        )
        return [ResourceView(r.code, r.provider_code, r.share_type, r.status) for r in rows]

    async def _apply(self, payload: str) -> None:
        kind, _, key = payload.partition(":")
        async with self.engine.connect() as conn:
            if kind == "grant":
                found = await self._grants(conn, key)
                self._put_grant(key, found[0] if found else None)
            elif kind == "resource":
                found_r = await self._resources(conn, key)
                if found_r:
                    self.resources[key] = found_r[0]
                else:
                    self.resources.pop(key, None)
            elif kind == "session":
                self.revoked_sessions.add(key)
            elif kind == "signing_key":
                await self._signing_keys_changed()
            else:  # principals and departments: cheap enough to reload every set
                await self.load_all()

    async def run(self) -> None:
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, server_settings={"search_path": self.schema})
                queue: asyncio.Queue[str] = asyncio.Queue()
                await conn.add_listener(CHANNEL, lambda _c, _p, _ch, payload, q=queue: q.put_nowait(payload))
                # A lost connection (the database restarted) is noticed at once, not at the next reload.
                conn.add_termination_listener(lambda _c, q=queue: q.put_nowait(_CONNECTION_LOST))
                await self.load_all()
                await self._signing_keys_changed()
                while not self._stopping:
                    try:
                        payload = await asyncio.wait_for(queue.get(), 30.0)
                        if payload is _CONNECTION_LOST:
                            raise ConnectionError("the database connection that listens for changes was lost")
                        await self._apply(payload)
                    except TimeoutError:
                        await self.load_all()
                        await self._signing_keys_changed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live state listener failed (%s); reconnecting", exc)
                await asyncio.sleep(1.0)
            finally:
                if conn is not None:
                    conn.terminate()  # a listening connection holds nothing a graceful close would save

    async def _signing_keys_changed(self) -> None:
        for reload in self.on_signing_keys:
            await reload()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="gateway-live-state")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except BaseException:
                pass
