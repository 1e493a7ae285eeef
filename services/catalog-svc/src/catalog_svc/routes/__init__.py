"""HTTP handlers under /api/v1/catalog: parse, authorise, call the flows, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from catalog_svc.routes import federation, obligations, projects, resources, spreadsheets, views

routers: list[APIRouter] = [
    resources.router,
    views.router,
    spreadsheets.router,
    obligations.router,
    projects.router,
    federation.router,
]
