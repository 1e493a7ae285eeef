"""Which gateway tokens a service must refuse although their signature and expiry are fine.

The gateway refuses the tokens of ended sessions and of disabled users, clients and departments at the door;
a service reached on its own port must refuse them too. Each service keeps a small projection of the gateway's
`identity.session.revoked`, `identity.principal.changed` and `identity.department.changed` events in its own
schema (table `revocation`), held in memory for the check on every call: the handler updates this process at
once, and a reload every few seconds brings in what another replica of the service consumed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import text

from govshare_common.consumer import Handler, Subscription
from govshare_common.db import Database, UnitOfWork
from govshare_common.events import Envelope

log = logging.getLogger("govshare.revocations")

REVOCATION_DDL = [
    """
    CREATE TABLE IF NOT EXISTS revocation (
        kind text NOT NULL CHECK (kind IN ('session', 'principal', 'department')),
        key text NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, key)
    )
    """
]

SESSION_REVOKED = "identity.session.revoked"
PRINCIPAL_CHANGED = "identity.principal.changed"
DEPARTMENT_CHANGED = "identity.department.changed"

# An access token lives minutes and a refresh of an ended session is refused at the gateway, so an ended
# session's row matters for no longer than that; a day is a wide margin.
SESSION_ROW_RETENTION = timedelta(days=1)
RELOAD_SECONDS = 2.0


class Revocations:
    """The in-memory view a service checks on every authenticated call."""

    def __init__(self) -> None:
        self.sessions: set[str] = set()
        self.principals: set[str] = set()
        self.departments: set[str] = set()

    def refusal(self, *, subject: str, session_id: str | None, department: str | None) -> str | None:
        """Why a token of this principal is no longer honoured, or None."""
        if session_id and session_id in self.sessions:
            return "session_ended"
        if subject in self.principals:
            return "principal_disabled"
        if department and department in self.departments:
            return "department_disabled"
        return None

    def _set(self, kind: str) -> set[str]:
        return {"session": self.sessions, "principal": self.principals, "department": self.departments}[kind]

    def apply(self, kind: str, key: str, *, revoked: bool) -> None:
        if revoked:
            self._set(kind).add(key)
        else:
            self._set(kind).discard(key)

    async def load(self, db: Database) -> None:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT kind, key FROM revocation"))).all()
        fresh: dict[str, set[str]] = {"session": set(), "principal": set(), "department": set()}
        for kind, key in rows:
            fresh[kind].add(key)
        self.sessions, self.principals, self.departments = fresh["session"], fresh["principal"], fresh["department"]

    async def keep_loaded(self, db: Database) -> None:
        while True:
            await asyncio.sleep(RELOAD_SECONDS)
            try:
                await self.load(db)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away a moment; the last view stays in force
                log.warning("cannot reload revocations: %s", exc)

    def handlers(self) -> dict[str, Handler]:
        """Inbox handlers for the gateway's identity events: each writes the row and updates this process."""

        async def record(uow: UnitOfWork, kind: str, key: str, *, revoked: bool) -> None:
            if revoked:
                await uow.execute(
                    text(
                        "INSERT INTO revocation (kind, key, at) VALUES (:kind, :key, :at) "
                        "ON CONFLICT (kind, key) DO NOTHING"
                    ),
                    {"kind": kind, "key": key, "at": uow.clock.now()},
                )
            else:
                await uow.execute(
                    text("DELETE FROM revocation WHERE kind = :kind AND key = :key"), {"kind": kind, "key": key}
                )
            self.apply(kind, key, revoked=revoked)

        async def session_revoked(env: Envelope, uow: UnitOfWork) -> None:
            await record(uow, "session", str(env.data["session_id"]), revoked=True)

        async def principal_changed(env: Envelope, uow: UnitOfWork) -> None:
            await record(uow, "principal", str(env.data["principal_id"]), revoked=env.data.get("status") != "active")

        async def department_changed(env: Envelope, uow: UnitOfWork) -> None:
            await record(uow, "department", str(env.data["code"]), revoked=env.data.get("status") == "disabled")

        return {
            SESSION_REVOKED: session_revoked,
            PRINCIPAL_CHANGED: principal_changed,
            DEPARTMENT_CHANGED: department_changed,
        }


def following_identity(subscriptions: list[Subscription], revocations: Revocations) -> list[Subscription]:
    """`subscriptions` with the revocation handlers added to the gateway's, after any the service has of its
    own for the same events (both run, in the same unit of work)."""
    # A copy: a service's Subscription objects are module-level and outlive one app (tests build many).
    own_gateway = next((s for s in subscriptions if s.source == "gateway"), None)
    gateway = Subscription(source="gateway", handlers=dict(own_gateway.handlers) if own_gateway else {})
    subscriptions = [s for s in subscriptions if s is not own_gateway] + [gateway]
    for type_, handler in revocations.handlers().items():
        own = gateway.handler_for(type_)
        gateway.handlers[type_] = handler if own is None else _both(own, handler)
    return subscriptions


def _both(first: Handler, second: Handler) -> Handler:
    async def run(env: Envelope, uow: UnitOfWork) -> None:
        await first(env, uow)
        await second(env, uow)

    return run


async def prune_revocations(uow: UnitOfWork) -> None:
    await uow.execute(
        text("DELETE FROM revocation WHERE kind = 'session' AND at < :cutoff"),
        {"cutoff": uow.clock.now() - SESSION_ROW_RETENTION},
    )
