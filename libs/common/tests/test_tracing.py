"""A request's trace: the caller's traceparent continues through a service (its logs and its own calls carry the
same trace id), and a request without one starts a trace of its own."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from govshare_common.tracing import ServerSpanMiddleware, current_trace_id, current_traceparent, setup_tracing

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def app() -> FastAPI:
    setup_tracing("test")
    made = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @made.get("/api/v1/things/{code}")
    async def thing(code: str) -> dict[str, str | None]:
        return {"trace_id": current_trace_id(), "traceparent": current_traceparent()}

    @made.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"trace_id": current_trace_id()}

    made.add_middleware(ServerSpanMiddleware)
    return made


async def test_the_callers_trace_continues_and_a_new_request_starts_its_own() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app()), base_url="http://svc") as http:
        continued = (await http.get("/api/v1/things/a", headers={"traceparent": CALLER})).json()
        assert continued["trace_id"] == CALLER_TRACE
        # the next call goes out under this service's span of the same trace, not the caller's span
        version, trace_id, span_id, _flags = continued["traceparent"].split("-")
        assert (version, trace_id) == ("00", CALLER_TRACE) and span_id != "00f067aa0ba902b7"

        first = (await http.get("/api/v1/things/a")).json()["trace_id"]
        second = (await http.get("/api/v1/things/b")).json()["trace_id"]
        assert len(first) == 32 and int(first, 16) != 0
        assert first != second != CALLER_TRACE

        # probes make no span: nothing current while they answer
        assert (await http.get("/healthz", headers={"traceparent": CALLER})).json()["trace_id"] == ""
