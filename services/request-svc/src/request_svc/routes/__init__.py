"""HTTP handlers under /api/v1/requests and /api/v1/grants: parse, authorise, call the flows, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from request_svc.routes import grants, requests, restrictions

# restrictions first: its /api/v1/requests/restrictions paths must not be read as a request id
routers: list[APIRouter] = [restrictions.router, requests.router, grants.router]
