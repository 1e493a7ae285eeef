"""When a hosted resource is overdue for an update (R3.6, "同步归集，实时更新"; 001 Art.21 sanctions).

A resource's catalog update cycle says how often its provider refreshes it; the platform expects an ingest at
least once per cycle, counted from the last ingest (or from publication, before the first one). Realtime
resources are expected to be fed continuously, so one day without any ingest is overdue. Irregular ones are
never overdue.
"""

from __future__ import annotations

from datetime import datetime, timedelta

CYCLES: dict[str, timedelta | None] = {
    "realtime": timedelta(days=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
    "quarterly": timedelta(days=92),
    "half_yearly": timedelta(days=183),
    "yearly": timedelta(days=366),
    "irregular": None,
}


def due_at(update_cycle: str, *, published_at: datetime, last_ingest_at: datetime | None) -> datetime | None:
    """When the next ingest is due; None when the cycle sets no deadline."""
    interval = CYCLES.get(update_cycle)
    if interval is None:
        return None
    return (last_ingest_at or published_at) + interval


def is_stale(update_cycle: str, *, published_at: datetime, last_ingest_at: datetime | None, now: datetime) -> bool:
    due = due_at(update_cycle, published_at=published_at, last_ingest_at=last_ingest_at)
    return due is not None and now > due
