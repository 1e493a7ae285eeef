"""What the gateway emits, with payload schemas."""

from __future__ import annotations

from govshare_common.events import EventRegistry

registry = EventRegistry()
