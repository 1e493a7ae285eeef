"""Open data (003 Art.25-27, 004 Art.20-23), pure: what of an open resource the public receives, and how often.

Only resources the catalog marks open to the public (开放属性) are served, and only where the profile opens data.
Internal items stay inside government; every other item is served through its catalog masking rule — the
catalog requires one for sensitive and personal items of an open resource, and an item that is not public and
has none is never shown in clear ("对非涉密但敏感的数据，要对原始数据进行脱敏加工后开放", 003 Art.26). No grant widens it:
the public is nobody's grantee.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from exchange_svc.domain.access import mask_full, mask_value
from exchange_svc.domain.resources import HostedResource

# Calls one address may make per minute (every replica counts in the same table).
CALLS_PER_MINUTE = 30
WINDOW = timedelta(minutes=1)


def open_items(resource: HostedResource) -> tuple[str, ...]:
    return tuple(i.name for i in resource.items if i.sensitivity != "internal")


def public_row(data: dict[str, Any], resource: HostedResource) -> dict[str, Any]:
    """A record as the public sees it: open items only, each through its masking rule."""
    out: dict[str, Any] = {}
    for name in open_items(resource):
        item = resource.item(name)
        if item is None or name not in data:
            continue
        value = data[name]
        if item.masking_rule != "none":
            out[name] = mask_value(item, value)
        elif item.sensitivity == "public" or value is None:
            out[name] = value
        else:
            out[name] = mask_full(str(value))  # sensitive without a rule of its own: never in clear
    return out


def window_start(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def retry_after(now: datetime) -> float:
    """Seconds until the next window opens."""
    return max((window_start(now) + WINDOW - now).total_seconds(), 0.001)
