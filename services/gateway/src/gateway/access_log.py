"""Every request, allowed or denied, becomes a gateway.access event — exactly once, whatever fails.

`record` appends the access to the journal (`access_journal`) and returns: a request never waits on the
database. A writer task moves journal lines into the outbox in batches (every 20 ms or 500 events), storing the
journal position in the same transaction, so a batch is either written with its position or not at all. While
PostgreSQL is down the journal simply grows and the writer retries; a batch the database refuses for its content
is written again in a plainer form, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from govshare_common.db import Database
from govshare_common.identifiers import hash_identifier

from gateway.access_journal import AccessJournal, Position
from gateway.events import Access

log = logging.getLogger("govshare.gateway.access")


class AccessRecorder:
    def __init__(
        self, db: Database, journal_dir: Path, *, max_batch: int = 500, interval: float = 0.02, retry: float = 0.5
    ) -> None:
        self.db = db
        self.journal = AccessJournal(journal_dir)
        self.journal_id = str(journal_dir.resolve())
        self.max_batch = max_batch
        self.interval = interval
        self.retry = retry
        self._position: Position | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self.database_reachable = True

    def record(self, access: Access) -> None:
        self.journal.append(access.model_dump_json().encode() + b"\n")
        self._wake.set()

    @property
    def pending(self) -> bool:
        return self._position is None or self._position < self.journal.end

    async def flush(self) -> int:
        """Write one batch from the journal; the number of records written."""
        async with self._flushing:
            if self._position is None:
                self._position = await self._stored_position()
            lines, after = self.journal.read(self._position, max_lines=self.max_batch)
            if after == self._position:
                return 0
            records = [_parse(line) for line in lines]
            await self._write([r for r in records if r is not None], after)
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

    async def _run(self) -> None:
        while True:
            try:
                written = await self.flush()
                if not self.database_reachable:
                    log.warning("access records are reaching the database again")
                self.database_reachable = True
                if written < self.max_batch:
                    self._wake.clear()
                    if not self.pending:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.database_reachable:
                    log.error("writing access records failed (%s); they wait in the journal", type(exc).__name__)
                self.database_reachable = False
                await asyncio.sleep(self.retry)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-access-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        try:
            while await self.flush():
                pass
        except Exception:
            log.warning("access records not yet in the database stay in the journal for the next start")
        self.journal.close()

    async def drain(self) -> None:
        """Wait until everything recorded so far is in the outbox."""
        while await self.flush():
            pass


def _parse(line: bytes) -> Access | None:
    try:
        return Access.model_validate_json(line)
    except ValueError:
        log.error("an unreadable line in the access journal was passed over: %r", line[:200])
        return None


def _plain(access: Access) -> Access:
    """The record with every text reduced to ASCII escapes: what no database can refuse for its characters."""
    values = {k: (v.encode("unicode_escape").decode("ascii") if isinstance(v, str) else v) for k, v in access}
    values["reason"] = (values.get("reason") or "") + "|plain_form"
    return Access.model_validate(values)


def hashed_subjects(values: list[str], key: bytes) -> list[str]:
    return [hash_identifier(v, key=key) for v in values if v]
