"""The audit log in the database: append-only monthly partitions, the chain head, checkpoints, verification
and retention.

Appends are serialised on the chain head row (FOR UPDATE): one batch at a time computes its hashes in order in
Python and writes them with one COPY. The service's runtime connections log in as the writer role, a member of
no other role, with only INSERT and SELECT on the log tables (`grant_writer`, run by the schema owner at start);
monthly partitions are made and dropped through the owner's two checking functions (migration audit_0004).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from govshare_common.events import Envelope

from audit_svc.chain import GENESIS, Problem, Walk, canonical_body
from audit_svc.domain import index_fields
from audit_svc.signing import KeyStore, checkpoint_message, verify_signature

log = logging.getLogger("govshare.audit.ledger")

LOG_TABLES = ("audit_entry", "audit_subject")
# INSERT and SELECT only: the log, its subject index, checkpoints, the public keys and the retention record.
APPEND_ONLY = ("audit_entry", "audit_subject", "audit_checkpoint", "audit_signing_key", "audit_partition_drop")
PARTITION_FUNCTIONS = ("add_month_partitions(text, timestamptz, timestamptz)", "drop_month_partitions(text)")
ENTRY_COLUMNS = (
    "position",
    "recorded_at",
    "source",
    "seq",
    "event_id",
    "type",
    "occurred_at",
    "department",
    "provider",
    "resource",
    "grant_id",
    "actor",
    "body",
    "prev_hash",
    "hash",
)
VERIFY_CHUNK = 20_000


async def grant_writer(conn: AsyncConnection, writer: str, schema: str) -> None:
    """What the writer role may do, granted afresh at every start by the schema owner (so a table added by a
    later migration is covered): everything on the service's working tables, only SELECT and INSERT on the
    log's, only SELECT on a monthly partition directly, and the two partition functions."""
    role = '"' + writer.replace('"', '""') + '"'
    await conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
    tables = await conn.execute(
        text(
            "SELECT c.relname, c.relispartition FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'p')"
        ),
        {"s": schema},
    )
    for table, partition in tables.all():
        await conn.execute(text(f"REVOKE ALL ON {table} FROM {role}"))
        rights = "SELECT" if partition else "SELECT, INSERT" if table in APPEND_ONLY else "ALL"
        await conn.execute(text(f"GRANT {rights} ON {table} TO {role}"))
    await conn.execute(text(f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}'))
    for function in PARTITION_FUNCTIONS:
        # PUBLIC may execute a new function; a restore without its ACLs would leave it so.
        await conn.execute(text(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC"))
        await conn.execute(text(f"GRANT EXECUTE ON FUNCTION {function} TO {role}"))


def month_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)


def partition_suffix(start: datetime) -> str:
    return f"y{start.year:04d}m{start.month:02d}"


def partition_start(name: str) -> datetime | None:
    """The month a partition holds, from its name (audit_entry_y2025m09)."""
    try:
        suffix = name.rsplit("_", 1)[1]
        return datetime(int(suffix[1:5]), int(suffix[6:8]), 1, tzinfo=UTC)
    except (IndexError, ValueError):
        return None


@dataclass
class Appended:
    count: int
    first_position: int
    last_position: int
    envelopes: list[Envelope]  # those appended (duplicates left out), in position order


@dataclass
class Ledger:
    """One per service instance: remembers which monthly partitions exist."""

    _months: set[datetime] = field(default_factory=set)

    def forget_month(self, start: datetime) -> None:
        self._months.discard(start)

    def forget_months(self) -> None:
        """After a rollback: a partition made in that transaction does not exist after all."""
        self._months.clear()

    async def ensure_month(self, conn: AsyncConnection, at: datetime) -> None:
        start = month_start(at)
        if start in self._months:
            return
        suffix = partition_suffix(start)
        exists = (await conn.execute(text("SELECT to_regclass(:n)"), {"n": f"audit_entry_{suffix}"})).scalar_one()
        if exists is None:
            await conn.execute(
                text("SELECT add_month_partitions(:suffix, :start, :end)"),
                {"suffix": suffix, "start": start, "end": next_month(start)},
            )
        self._months.add(start)

    async def append(self, conn: AsyncConnection, envelopes: Sequence[Envelope], *, now: datetime) -> Appended:
        """Append in one go what is not in the log yet; (source, seq) already there is skipped."""
        head = (await conn.execute(text("SELECT position, hash, recorded_at FROM audit_head FOR UPDATE"))).one()
        fresh = await self._not_yet_logged(conn, envelopes)
        if not fresh:
            return Appended(0, head.position, head.position, [])
        recorded_at = max(now, head.recorded_at) if head.recorded_at else now
        await self.ensure_month(conn, recorded_at)

        chain = _Chaining(prev=bytes(head.hash), position=int(head.position), recorded_at=recorded_at)
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        # The rows are made while COPY sends them: PostgreSQL writes the first ones while the rest are hashed.
        await driver.copy_records_to_table("audit_entry", records=chain.entries(fresh), columns=ENTRY_COLUMNS)
        if chain.subjects:
            await driver.copy_records_to_table(
                "audit_subject", records=chain.subjects, columns=("subject_hash", "position", "recorded_at")
            )
        position, prev = chain.position, chain.prev
        await conn.execute(
            text("UPDATE audit_head SET position = :p, hash = :h, recorded_at = :r"),
            {"p": position, "h": prev, "r": recorded_at},
        )
        highest: dict[str, int] = {}
        for env in fresh:
            highest[env.source_service] = max(highest.get(env.source_service, 0), env.seq)
        await conn.execute(
            text(
                "INSERT INTO audit_source_head (source, last_seq) "
                "SELECT * FROM unnest(CAST(:s AS text[]), CAST(:q AS bigint[])) "
                "ON CONFLICT (source) DO UPDATE SET last_seq = greatest(audit_source_head.last_seq, excluded.last_seq)"
            ),
            {"s": list(highest), "q": list(highest.values())},
        )
        return Appended(len(fresh), int(head.position) + 1, position, fresh)

    async def _not_yet_logged(self, conn: AsyncConnection, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Drop duplicates: within the batch, and (source, seq) pairs the log already holds.

        Events past a source's highest logged seq are new without a lookup (the common case: the inbox
        delivers in order); only those at or below it are looked up one by one in the (source, seq) index.
        """
        unique: dict[tuple[str, int], Envelope] = {}
        for env in envelopes:
            unique.setdefault((env.source_service, env.seq), env)
        if not unique:
            return []
        sources = sorted({s for s, _ in unique})
        rows = await conn.execute(
            text("SELECT source, last_seq FROM audit_source_head WHERE source = ANY(:s)"), {"s": sources}
        )
        highest = {r.source: int(r.last_seq) for r in rows}
        doubtful = [key for key in unique if key[1] <= highest.get(key[0], 0)]
        if doubtful:
            found = await conn.execute(
                text(
                    "SELECT e.source, e.seq FROM audit_entry e JOIN unnest(CAST(:s AS text[]), CAST(:q AS bigint[])) "
                    "AS k(source, seq) ON e.source = k.source AND e.seq = k.seq"
                ),
                {"s": [k[0] for k in doubtful], "q": [k[1] for k in doubtful]},
            )
            for r in found:
                unique.pop((r.source, int(r.seq)), None)
        return list(unique.values())


@dataclass
class _Chaining:
    """Turns a batch into entry rows in position order, each hash following the one before."""

    prev: bytes
    position: int
    recorded_at: datetime
    subjects: list[tuple[str, int, datetime]] = field(default_factory=list)

    def entries(self, envelopes: Sequence[Envelope]) -> Iterator[tuple[Any, ...]]:
        prev, position, recorded_at = self.prev, self.position, self.recorded_at
        stamp = recorded_at.isoformat()
        subjects = self.subjects
        sha256 = hashlib.sha256
        services: dict[str, str] = {}
        for env in envelopes:
            position += 1
            source = services.get(env.source) or services.setdefault(env.source, env.source_service)
            body = canonical_body(
                position=position,
                recorded_at=stamp,
                source=source,
                seq=env.seq,
                event_id=env.id,
                type_=env.type,
                subject=env.subject,
                time=env.time,
                data=env.data,
            )
            digest = sha256(prev + body).digest()
            idx = index_fields(env.type, env.data)
            yield (
                position,
                recorded_at,
                source,
                env.seq,
                env.id,
                env.type,
                env.time,
                idx.department,
                idx.provider,
                idx.resource,
                idx.grant_id,
                idx.actor,
                body,
                prev,
                digest,
            )
            if idx.subjects:
                subjects.extend((s, position, recorded_at) for s in dict.fromkeys(idx.subjects))
            prev = digest
        self.prev, self.position = prev, position


# --- checkpoints ------------------------------------------------------------------------------------------


async def sign_checkpoint(conn: AsyncConnection, keys: KeyStore, *, now: datetime) -> dict[str, Any] | None:
    """Sign the current chain head (None when the log is empty); an unchanged head is not signed twice."""
    head = (await conn.execute(text("SELECT position, hash, recorded_at FROM audit_head FOR UPDATE"))).one()
    if head.position == 0:
        return None
    latest = await latest_checkpoint(conn)
    if latest is not None and latest["position"] == head.position:
        return latest
    key = await keys.current(conn, now=now)
    signature = key.sign(checkpoint_message(int(head.position), bytes(head.hash), head.recorded_at))
    row = (
        await conn.execute(
            text(
                "INSERT INTO audit_checkpoint (position, hash, recorded_at, signed_at, kid, signature) "
                "VALUES (:p, :h, :r, :now, :kid, :sig) RETURNING id"
            ),
            {
                "p": head.position,
                "h": bytes(head.hash),
                "r": head.recorded_at,
                "now": now,
                "kid": key.kid,
                "sig": signature,
            },
        )
    ).one()
    return {
        "id": int(row.id),
        "position": int(head.position),
        "hash": bytes(head.hash).hex(),
        "recorded_at": head.recorded_at.isoformat() if head.recorded_at else "",
        "signed_at": now,
        "kid": key.kid,
        "signature": signature.hex(),
        "new": True,
    }


def _checkpoint_dict(r: Any) -> dict[str, Any]:
    return {
        "id": int(r.id),
        "position": int(r.position),
        "hash": bytes(r.hash).hex(),
        # As text, exactly as it enters the signed message (a JSON encoder might write "Z" for +00:00).
        "recorded_at": r.recorded_at.isoformat() if r.recorded_at else "",
        "signed_at": r.signed_at,
        "kid": r.kid,
        "signature": bytes(r.signature).hex(),
    }


async def latest_checkpoint(conn: AsyncConnection) -> dict[str, Any] | None:
    r = (
        await conn.execute(
            text(
                "SELECT id, position, hash, recorded_at, signed_at, kid, signature FROM audit_checkpoint "
                "ORDER BY position DESC, id DESC LIMIT 1"
            )
        )
    ).first()
    return _checkpoint_dict(r) if r else None


async def list_checkpoints(conn: AsyncConnection, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    total = (await conn.execute(text("SELECT count(*) FROM audit_checkpoint"))).scalar_one()
    rows = await conn.execute(
        text(
            "SELECT id, position, hash, recorded_at, signed_at, kid, signature FROM audit_checkpoint "
            "ORDER BY position DESC, id DESC LIMIT :l OFFSET :o"
        ),
        {"l": limit, "o": offset},
    )
    return [_checkpoint_dict(r) for r in rows], int(total)


# --- verification -----------------------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool
    first: int
    last: int
    checked: int
    anchor: str  # genesis | entry | retention
    checkpoints_matched: int
    problem: Problem | None

    def as_dict(self) -> dict[str, Any]:
        problem = None
        if self.problem is not None:
            problem = {"position": self.problem.position, "kind": self.problem.kind, "detail": self.problem.detail}
        return {
            "ok": self.ok,
            "from": self.first,
            "to": self.last,
            "checked": self.checked,
            "anchor": self.anchor,
            "checkpoints_matched": self.checkpoints_matched,
            "problem": problem,
        }


async def verify(engine: AsyncEngine, *, first: int | None = None, last: int | None = None) -> Verification:
    """Walk entries first..last (default: everything kept) in one snapshot, streamed in chunks from a
    server-side cursor, and report the first entry that was altered or removed."""
    async with engine.connect() as sa_conn:
        driver = (await sa_conn.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.transaction(isolation="repeatable_read", readonly=True):
            head = await driver.fetchrow("SELECT position FROM audit_head")
            kept = await driver.fetchrow("SELECT coalesce(max(last_position), 0) AS dropped FROM audit_partition_drop")
            start = max(first or 1, int(kept["dropped"]) + 1)
            end = min(last or int(head["position"]), int(head["position"]))
            if end < start:
                return Verification(True, start, end, 0, "entry", 0, None)
            anchor, expected_prev, problem = await _anchor(driver, start)
            checkpoints, problem = await _signed_checkpoints(driver, start, end, problem)
            walk = Walk(next_position=start, expected_prev=expected_prev, checkpoints=checkpoints)
            if problem is None and start - 1 in checkpoints:
                # A checkpoint right before the range (e.g. signed just before retention dropped it) anchors it.
                if checkpoints[start - 1] != expected_prev:
                    problem = Problem(start, "checkpoint_mismatch", "does not follow the signed checkpoint before it")
                walk.checkpoints_matched += 1
            if problem is None:
                cursor = await driver.cursor(
                    "SELECT position, hash, body FROM audit_entry WHERE position BETWEEN $1 AND $2 ORDER BY position",
                    start,
                    end,
                )
                while True:
                    rows = await cursor.fetch(VERIFY_CHUNK)
                    if not rows or not walk.feed(rows):
                        break
                walk.finish(end)
                problem = walk.problem
            if problem is None and anchor == "retention" and walk.checkpoints_matched == 0:
                problem = Problem(start, "checkpoint_mismatch", "no signed checkpoint in range confirms the start")
            return Verification(problem is None, start, end, walk.checked, anchor, walk.checkpoints_matched, problem)


async def _anchor(driver: Any, start: int) -> tuple[str, bytes, Problem | None]:
    if start == 1:
        return "genesis", GENESIS, None
    before = await driver.fetchrow("SELECT hash FROM audit_entry WHERE position = $1", start - 1)
    if before is not None:
        return "entry", bytes(before["hash"]), None
    dropped = await driver.fetchrow("SELECT last_hash FROM audit_partition_drop WHERE last_position = $1", start - 1)
    first = await driver.fetchrow("SELECT prev_hash FROM audit_entry WHERE position = $1", start)
    if dropped is None or first is None:
        return "entry", GENESIS, Problem(start - 1, "removed", f"entry {start - 1} is missing")
    if bytes(first["prev_hash"]) != bytes(dropped["last_hash"]):
        return "retention", GENESIS, Problem(start, "altered", "does not follow the last entry retention dropped")
    return "retention", bytes(dropped["last_hash"]), None


async def _signed_checkpoints(
    driver: Any, start: int, end: int, problem: Problem | None
) -> tuple[dict[int, bytes], Problem | None]:
    keys = {
        r["kid"]: bytes(r["public_key"]) for r in await driver.fetch("SELECT kid, public_key FROM audit_signing_key")
    }
    signed: dict[int, bytes] = {}
    rows = await driver.fetch(
        "SELECT position, hash, recorded_at, kid, signature FROM audit_checkpoint "
        "WHERE position BETWEEN $1 AND $2 ORDER BY position",
        start - 1,
        end,
    )
    for r in rows:
        key = keys.get(r["kid"])
        message = checkpoint_message(int(r["position"]), bytes(r["hash"]), r["recorded_at"])
        if key is None or not verify_signature(key, message, bytes(r["signature"])):
            return signed, problem or Problem(int(r["position"]), "checkpoint_mismatch", "checkpoint signature invalid")
        signed[int(r["position"])] = bytes(r["hash"])
    return signed, problem


# --- retention --------------------------------------------------------------------------------------------


async def partitions(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_entry'::regclass ORDER BY c.relname"
        )
    )
    out = []
    for r in rows:
        start = partition_start(r.name)
        if start is None:
            continue
        bounds = (
            await conn.execute(text(f"SELECT min(position) AS a, max(position) AS b, count(*) AS n FROM {r.name}"))
        ).one()
        out.append(
            {
                "partition": r.name,
                "month": f"{start.year:04d}-{start.month:02d}",
                "range_start": start,
                "range_end": next_month(start),
                "first_position": bounds.a,
                "last_position": bounds.b,
                "entries": int(bounds.n),
            }
        )
    return out


def retention_cutoff(now: datetime, years: int) -> datetime:
    """Partitions that end on or before this instant have been kept `years` full years."""
    now = now.astimezone(UTC)
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


async def drop_expired(
    ledger: Ledger, conn: AsyncConnection, keys: KeyStore, *, now: datetime, years: int
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Drop the monthly partitions past retention, oldest first, each only behind a signed checkpoint that
    covers its last entry (signed here if none does yet), so that what remains still verifies."""
    cutoff = retention_cutoff(now, years)
    dropped: list[dict[str, Any]] = []
    checkpoint: dict[str, Any] | None = None
    for part in await partitions(conn):
        if part["range_end"] > cutoff:
            break
        if part["last_position"] is not None:
            checkpoint = await latest_checkpoint(conn)
            if checkpoint is None or checkpoint["position"] < part["last_position"]:
                checkpoint = await sign_checkpoint(conn, keys, now=now)
            assert checkpoint is not None and checkpoint["position"] >= part["last_position"]
            last_hash = (
                await conn.execute(
                    text(f"SELECT hash FROM {part['partition']} WHERE position = :p"), {"p": part["last_position"]}
                )
            ).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO audit_partition_drop (partition, range_start, range_end, first_position, "
                    "last_position, last_hash, entries, checkpoint_id, retention_years, dropped_at) "
                    "VALUES (:name, :a, :b, :first, :last, :hash, :n, :cp, :years, :now)"
                ),
                {
                    "name": part["partition"],
                    "a": part["range_start"],
                    "b": part["range_end"],
                    "first": part["first_position"],
                    "last": part["last_position"],
                    "hash": bytes(last_hash),
                    "n": part["entries"],
                    "cp": checkpoint["id"],
                    "years": years,
                    "now": now,
                },
            )
        suffix = part["partition"].rsplit("_", 1)[1]
        await conn.execute(text("SELECT drop_month_partitions(:suffix)"), {"suffix": suffix})
        ledger.forget_month(part["range_start"])
        dropped.append({**part, "checkpoint_id": checkpoint["id"] if checkpoint and part["last_position"] else None})
    return dropped, checkpoint


async def ensure_upcoming_months(ledger: Ledger, conn: AsyncConnection, *, now: datetime) -> None:
    """This month's and next month's partitions, made ahead so appends rarely pay for DDL."""
    await ledger.ensure_month(conn, now)
    await ledger.ensure_month(conn, next_month(month_start(now)) + timedelta(hours=1))
