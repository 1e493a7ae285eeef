"""Injectable time: services ask a Clock, so tests can move time instead of waiting for it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from govshare_common.workdays import china_today


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until told to move (tests, demo back-dating)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at

    def advance(self, delta: timedelta) -> None:
        self._at += delta


def china_date(clock: Clock) -> date:
    """Today's date in China, whatever the server's time zone."""
    return china_today(clock.now())
