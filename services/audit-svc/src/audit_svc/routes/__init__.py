"""HTTP handlers under /api/v1/audit (auditors) and /api/v1/supervision (platform office, auditors, departments)."""

from __future__ import annotations

from fastapi import APIRouter

from audit_svc.routes import audit_log, chain_status, complaints, evaluation, notices, registers

routers: list[APIRouter] = [
    audit_log.router,
    notices.router,
    evaluation.router,
    complaints.router,
    chain_status.router,
    registers.router,
]
