"""Failed credentials counted in the database (so every replica agrees), per account and address, per
account, and per address.

- account + address: 5 failures lock that account *from that address* for 15 minutes. Someone elsewhere who
  guesses wrong locks only themselves out, never the administrator at their own desk.
- account, from anywhere: after 20 failures within 15 minutes every further attempt waits a minute — a slow
  throttle, not a lock, so a spread-out attack cannot guess fast and cannot lock anyone out either.
- address: 100 failures within 15 minutes stop that address for 15 minutes, whatever names it tries.

Accounts are counted by the name the caller sent, whether or not it exists, so a refusal never tells which
names are real.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from govshare_common.db import UnitOfWork


@dataclass(frozen=True)
class Rule:
    kind: str
    limit: int
    window: timedelta
    lock: timedelta


PER_ACCOUNT_AND_ADDRESS = Rule("account_address", 5, timedelta(minutes=15), timedelta(minutes=15))
PER_ACCOUNT = Rule("account", 20, timedelta(minutes=15), timedelta(minutes=1))
PER_ADDRESS = Rule("address", 100, timedelta(minutes=15), timedelta(minutes=15))


@dataclass(frozen=True)
class Attempt:
    """Who is trying: the account name as sent (a user name or a client id) and the caller's address."""

    realm: str  # "user" or "client": one name space each
    account: str
    address: str

    def scopes(self) -> list[tuple[Rule, str]]:
        return [
            (PER_ACCOUNT_AND_ADDRESS, f"{self.realm}:{self.account}@{self.address}"),
            (PER_ACCOUNT, f"{self.realm}:{self.account}"),
            (PER_ADDRESS, f"address:{self.address}"),
        ]


@dataclass(frozen=True)
class Held:
    """The attempt may not be tried now: which rule holds it and until when."""

    rule: Rule
    until: datetime

    def retry_after(self, now: datetime) -> float:
        return max(0.0, (self.until - now).total_seconds())


async def held(uow: UnitOfWork, attempt: Attempt, now: datetime) -> Held | None:
    scopes = attempt.scopes()
    rows = await uow.execute(
        text("SELECT scope, locked_until FROM credential_failure WHERE scope = ANY(:s) AND locked_until > :now"),
        {"s": [s for _, s in scopes], "now": now},
    )
    locked = {r.scope: r.locked_until for r in rows}
    for rule, scope in scopes:
        if scope in locked:
            return Held(rule, locked[scope])
    return None


async def failed(uow: UnitOfWork, attempt: Attempt, now: datetime) -> list[Rule]:
    """Count a failure in every scope; returns the rules whose lock this failure started."""
    started = []
    for rule, scope in attempt.scopes():
        row = (
            await uow.execute(
                text(
                    "INSERT INTO credential_failure AS f (scope, failures, first_at) VALUES (:s, 1, :now) "
                    "ON CONFLICT (scope) DO UPDATE SET "
                    "failures = CASE WHEN f.first_at < :since AND (f.locked_until IS NULL OR f.locked_until <= :now) "
                    "THEN 1 ELSE f.failures + 1 END, "
                    "first_at = CASE WHEN f.first_at < :since AND (f.locked_until IS NULL OR f.locked_until <= :now) "
                    "THEN :now ELSE f.first_at END "
                    "RETURNING failures, locked_until"
                ),
                {"s": scope, "now": now, "since": now - rule.window},
            )
        ).one()
        if row.failures >= rule.limit:
            await uow.execute(
                text("UPDATE credential_failure SET locked_until = :until WHERE scope = :s"),
                {"s": scope, "until": now + rule.lock},
            )
            if row.locked_until is None or row.locked_until <= now:
                started.append(rule)
    return started


async def succeeded(uow: UnitOfWork, attempt: Attempt) -> None:
    """A right credential clears what this account and address had counted (not the account-wide count, which
    others' failures fill, nor the address's, which other names' failures fill)."""
    own = attempt.scopes()[0][1]
    await uow.execute(text("DELETE FROM credential_failure WHERE scope = :s"), {"s": own})


def retry_after_header(wait: float) -> str:
    """Retry-After in whole seconds, never 0 (a caller told 0 would try again at once)."""
    return str(max(1, math.ceil(wait)))
