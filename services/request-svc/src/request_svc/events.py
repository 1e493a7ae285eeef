"""What request-svc emits (registered with payload schemas) and how it handles what it consumes."""

from __future__ import annotations

from govshare_common.events import EventRegistry

registry = EventRegistry()
