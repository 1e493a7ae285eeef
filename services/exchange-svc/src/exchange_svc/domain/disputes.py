"""Disputes over a record (疑义、错误数据校核, R3.7; 000 Art.20, 004 Art.19).

A consumer flags one item of one record with a reason; the provider confirms the value or corrects it within
the profile's dispute_reply_wd working days; past that the dispute is overdue (and can still be answered).
Under Beijing's profile the platform office (the authority) is copied on every dispute.
"""

from __future__ import annotations

from datetime import date

from govshare_common.errors import Conflict

OPEN_STATES = frozenset({"open", "overdue"})
STATE_LABELS = {"open": "待核实", "answered": "已确认无误", "corrected": "已更正", "overdue": "已逾期"}


def ensure_answerable(state: str) -> None:
    if state not in OPEN_STATES:
        raise Conflict(
            f"该疑义已办结（{STATE_LABELS.get(state, state)}），不能再答复。",
            f"The dispute is already settled ({state}).",
            code="dispute_settled",
        )


def is_overdue(state: str, due: date, today: date) -> bool:
    """Due on `due`, late from the next day."""
    return state == "open" and today > due
