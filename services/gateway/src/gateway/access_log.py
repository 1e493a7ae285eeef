"""Every request through the door, decided, cached, refused or failed upstream, becomes one gateway.access event.

nginx writes one JSON line per request (`door_conf`, `access_journal`); the shipper moves the lines into the
outbox in batches (every quarter of a second, up to 5,000 lines: a transaction's own cost, spread over many
records, is what makes shipping cheap — the lines are already durable in the journal while they wait), storing the journal position in the same transaction, so a batch
is either written with its position or not at all: a gateway or nginx killed at any moment loses no record and
doubles none. Of several gateway processes one ships at a time (a lock on the folder); when it dies another
takes over from the stored position. While PostgreSQL is down the journal simply grows and the shipper retries;
a batch the database refuses for its content is written again in a plainer form, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from govshare_common.db import Database
from govshare_common.identifiers import hash_identifier

from gateway.access_journal import DoorJournal, Position
from gateway.events import Access

log = logging.getLogger("govshare.gateway.access")

DENIED_STATUSES = frozenset({401, 403, 413, 429})
UNLOGGED_PATHS = ("/healthz", "/readyz", "/metrics")
# An internal route asked for at the door: answered like a path that does not exist, recorded as denied.
PUBLIC_DOOR_REFUSAL = "internal_route_on_public_door"
# What nginx refused by itself, named as the Python door named it.
_NGINX_REASONS = {413: "too_large", 429: "rate_limited", 400: "bad_request", 504: "upstream_timeout"}


class AccessShipper:
    def __init__(
        self,
        db: Database,
        journal_dir: Path,
        hash_key: bytes,
        *,
        max_batch: int = 5000,
        interval: float = 0.25,
        retry: float = 0.5,
    ) -> None:
        self.db = db
        self.journal = DoorJournal(journal_dir)
        self.journal_id = str(journal_dir.resolve())
        self.hash_key = hash_key
        self.max_batch = max_batch
        self.interval = interval
        self.retry = retry
        self._position: Position | None = None
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self.database_reachable = True

    @property
    def shipping(self) -> bool:
        return self.journal.try_lock()

    @property
    def pending(self) -> bool:
        return self._position is None or self._position < self.journal.end()

    async def flush(self) -> int:
        """Ship one batch from the journal; the number of lines shipped (0 when another process ships)."""
        async with self._flushing:
            if not self.journal.try_lock():
                return 0
            if self._position is None:
                self._position = await self._stored_position()
            lines, after = self.journal.read(self._position, max_lines=self.max_batch)
            if after == self._position:
                self.journal.rotate_if_due(after)
                return 0
            records = [r for r in (self._parse(line) for line in lines) if r is not None]
            await self._write(records, after)
            self.journal.release_before(after)
            self._position = after
            return len(lines)

    async def _stored_position(self) -> Position:
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT segment, byte_offset FROM access_journal_position WHERE journal = :j"),
                    {"j": self.journal_id},
                )
            ).first()
        return Position(int(row[0]), int(row[1])) if row else self.journal.first_position()

    async def _write(self, records: list[Access], after: Position) -> None:
        try:
            await self._commit(records, after)
        except (OperationalError, InterfaceError, OSError):
            raise  # the database is away: the whole batch waits in the journal
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            # Records are made printable when they are built, so this is a defence, not a path: a batch the
            # database refuses for its content goes in again with every text in ASCII escapes.
            log.error("the database refused a batch of access records; writing it in plain form: %s", exc.orig)
            await self._commit([_plain(r) for r in records], after)

    async def _commit(self, records: list[Access], after: Position) -> None:
        async with self.db.unit_of_work() as uow:
            for access in records:
                uow.emit("gateway.access", access.principal or "anonymous", access)
            await uow.execute(
                text(
                    "INSERT INTO access_journal_position (journal, segment, byte_offset, updated_at)"
                    " VALUES (:j, :s, :o, now()) ON CONFLICT (journal) DO UPDATE"
                    " SET segment = EXCLUDED.segment, byte_offset = EXCLUDED.byte_offset, updated_at = now()"
                ),
                {"j": self.journal_id, "s": after.segment, "o": after.offset},
            )

    def _parse(self, line: bytes) -> Access | None:
        try:
            # nginx writes bytes that are not UTF-8 as they came; surrogateescape keeps them for `printable` to escape.
            return access_from_line(json.loads(line.decode("utf-8", errors="surrogateescape")), self.hash_key)
        except (ValueError, KeyError, TypeError):
            log.error("an unreadable line in the access journal was passed over: %r", line[:200])
            return None

    async def _run(self) -> None:
        while True:
            try:
                shipped = await self.flush()
                if not self.database_reachable:
                    log.warning("access records are reaching the database again")
                self.database_reachable = True
                if shipped < self.max_batch:
                    await asyncio.sleep(self.interval if self.journal.try_lock() else 1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.database_reachable:
                    log.error("shipping access records failed (%s); they wait in the journal", type(exc).__name__)
                self.database_reachable = False
                await asyncio.sleep(self.retry)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-access-shipper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        try:
            while await self.flush():
                pass
        except Exception:
            log.warning("access lines not yet in the database stay in the journal for the next start")
        self.journal.close()

    async def drain(self) -> None:
        """Wait until every line written so far is in the outbox (this process must be the shipper)."""
        while await self.flush():
            pass


def access_from_line(line: dict[str, Any], hash_key: bytes) -> Access | None:
    """The access record of one nginx line; None for the probes, which are not accesses."""
    method, uri = str(line["method"]), str(line["uri"])
    if not uri:  # refused while its request line was read: what there is of it
        method, _, rest = str(line.get("request") or "").partition(" ")
        uri = rest.rsplit(" ", 1)[0] if " HTTP/" in rest else rest
    path, _, query = uri.partition("?")
    if path in UNLOGGED_PATHS:
        return None
    status = int(line["status"])
    params = _query_values(query) if query else {}
    purpose = _text(line.get("purpose")) or next(iter(params.get("purpose", [])), None)
    reason = _text(line.get("reason")) or _NGINX_REASONS.get(status)
    if status in DENIED_STATUSES or reason == PUBLIC_DOOR_REFUSAL:
        outcome = "denied"
    elif status >= 500:
        outcome = "failed"
    else:
        outcome = "allowed"
    return Access(
        request_id=str(line["request_id"]),
        at=datetime.fromisoformat(str(line["at"])),
        principal=_text(line.get("principal")),
        principal_kind=_text(line.get("kind")),
        department=_text(line.get("department")),
        client_id=_text(line.get("client")),
        method=method or "-",
        route=path,
        resource=_text(line.get("resource")),
        purpose=purpose,
        subjects_hashed=[hash_identifier(v, key=hash_key) for v in params.get("subject", []) if v],
        outcome=outcome,
        reason=reason,
        status=status,
        latency_ms=round(float(line.get("request_time") or 0) * 1000, 3),
        bytes_in=_int(line.get("body_bytes")),
        bytes_out=_int(line.get("bytes_out")),
    )


_QUERY_NAMES = frozenset({"purpose", "subject"})


def _query_values(query: str) -> dict[str, list[str]]:
    """The query's purpose and subject values, decoded as `parse_qs` decodes them (blank ones dropped), without
    decoding every other parameter of every line."""
    found: dict[str, list[str]] = {}
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if not sep or not value:
            continue
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if name in _QUERY_NAMES:
            found.setdefault(name, []).append(unquote_plus(value))
    return found


def _text(value: Any) -> str | None:
    """A value the decision sent %-escaped (non-ASCII), back as it was; '' (not known) as None."""
    if not value:
        return None
    return unquote(str(value))


def _int(value: Any) -> int:
    text_value = str(value or "")
    return int(text_value) if text_value.isdigit() and len(text_value) <= 15 else 0


def _plain(access: Access) -> Access:
    """The record with every text reduced to ASCII escapes: what no database can refuse for its characters."""
    values = {k: (v.encode("unicode_escape").decode("ascii") if isinstance(v, str) else v) for k, v in access}
    values["reason"] = (values.get("reason") or "") + "|plain_form"
    return Access.model_validate(values)
