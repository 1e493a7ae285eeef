"""HTTP handlers under /api/v1/requests and /api/v1/grants: parse, authorise, call the flows, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from request_svc.routes import federation, grants, major_decisions, open_data_demands, requests, restrictions

# federation, restrictions, open-data demands and major decisions first: their fixed paths must not be read as a request or grant id
routers: list[APIRouter] = [
    federation.router,
    restrictions.router,
    open_data_demands.router,
    major_decisions.router,
    requests.router,
    grants.router,
]
