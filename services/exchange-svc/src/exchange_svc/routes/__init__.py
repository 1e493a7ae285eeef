"""HTTP handlers under /api/v1/exchange: parse, authorise, call the flows, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from exchange_svc.routes import (
    batches,
    conflicts,
    connectors,
    cross_level_exports,
    cross_level_subscriptions,
    disputes,
    exports,
    federation,
    files,
    open_data,
    records,
    subscriptions,
)

routers: list[APIRouter] = [
    records.router,
    batches.router,
    subscriptions.router,
    conflicts.router,
    disputes.router,
    exports.router,
    files.router,
    connectors.router,
    open_data.router,
    federation.router,
    cross_level_subscriptions.router,
    cross_level_exports.router,
]
