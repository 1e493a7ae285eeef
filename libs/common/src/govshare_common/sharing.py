"""The sharing vocabulary every service speaks (docs/event-contracts.md): what data may be used for, and
when a grant is in force. Pure: the gateway, request-svc and exchange-svc decide with the same words."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

# 共享用途 (R3.2, Hainan Art.20): codes in events and headers, Chinese labels for people.
PURPOSES: dict[str, str] = {
    "administrative_basis": "行政依据",
    "work_reference": "工作参考",
    "data_verification": "数据校核",
    "business_collaboration": "业务协同",
    "other": "其他",
}
Purpose = Literal["administrative_basis", "work_reference", "data_verification", "business_collaboration", "other"]


def grant_in_force(status: str, valid_from: datetime | None, valid_until: datetime | None, now: datetime) -> bool:
    """An active grant whose validity window holds `now` (no start: from issue; no end: until revoked)."""
    if status != "active":
        return False
    if valid_from is not None and now < valid_from:
        return False
    return valid_until is None or now < valid_until
