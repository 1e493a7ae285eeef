"""How long an idle HTTP connection between two parts of the platform stays open, on either side.

A caller that keeps a pooled connection longer than the server does will, sooner or later, send a request down
a connection the server is closing at that instant: the request is lost with a reset (and a POST cannot be
retried). So the servers wait longest, and every caller drops an idle connection well before they would.
"""

from __future__ import annotations

# uvicorn's own default is 5 s, shorter than aiohttp's (15 s) and equal to httpx's (5 s): both races open.
SERVER_KEEP_ALIVE_SECONDS = 75
# A server that stops waits this long for open connections to close, then closes them. Without a bound one
# accepted in the instant the server began to stop (too late to be told) holds it for the whole keep-alive.
SERVER_GRACEFUL_SHUTDOWN_SECONDS = 10
# The front door's upstream pools (nginx) and the services' httpx clients let an idle connection go after this long.
CALLER_IDLE_SECONDS = 30.0
