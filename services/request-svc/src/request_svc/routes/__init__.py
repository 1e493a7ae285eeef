"""HTTP handlers under /api/v1/requests and /api/v1/grants: parse, authorise, call the flows, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from request_svc.routes import grants, requests

routers: list[APIRouter] = [requests.router, grants.router]
