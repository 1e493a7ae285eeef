"""A batch while it runs: its states in the order they come, and how far along it is (rate, time left).

receiving  — the body streams in; each chunk of rows is checked, compared with the stored records and staged
validating — the body has ended (the total is known); its last chunk is checked and staged
applying   — the staged rows are switched in (change log, records, the batch and its event) in one transaction
done | failed | cancelled — the end; `failed` with code `interrupted` when the service died under it
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

RECEIVING = "receiving"
VALIDATING = "validating"
APPLYING = "applying"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"

STATES = (RECEIVING, VALIDATING, APPLYING, DONE, FAILED, CANCELLED)
RUNNING = (RECEIVING, VALIDATING, APPLYING)
# Once applying, the switch is one transaction already under way: it ends done (or failed), never cancelled.
CANCELLABLE = (RECEIVING, VALIDATING)

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Pace:
    rows_per_s: float | None
    eta_seconds: float | None


def pace(
    *,
    state: str,
    started_at: datetime,
    now: datetime,
    rows_done: int,
    rows_total: int | None,
    bytes_received: int,
    bytes_total: int | None,
) -> Pace:
    """Rows per second since the start, and the seconds left: from rows once the total is known, before that
    from the bytes received out of the body's declared length (None when neither is known)."""
    if state not in RUNNING:
        return Pace(None, None)
    elapsed = (now - started_at).total_seconds()
    if elapsed <= 0 or rows_done <= 0:
        return Pace(None, None)
    rate = rows_done / elapsed
    if rows_total is not None:
        return Pace(round(rate, 1), round(max(rows_total - rows_done, 0) / rate, 1))
    if bytes_total and bytes_received > 0:
        left = max(bytes_total - bytes_received, 0) / bytes_received * elapsed
        return Pace(round(rate, 1), round(left, 1))
    return Pace(round(rate, 1), None)
