"""How long an idle HTTP connection between two parts of the platform stays open, on either side.

A caller that keeps a pooled connection longer than the server does will, sooner or later, send a request down
a connection the server is closing at that instant: the request is lost with a reset (and a POST cannot be
retried). So the servers wait longest, and every caller drops an idle connection well before they would.
"""

from __future__ import annotations

# uvicorn's own default is 5 s, shorter than aiohttp's (15 s) and equal to httpx's (5 s): both races open.
SERVER_KEEP_ALIVE_SECONDS = 75
# The gateway's upstream pool and the services' httpx clients let an idle connection go after this long.
CALLER_IDLE_SECONDS = 30.0
