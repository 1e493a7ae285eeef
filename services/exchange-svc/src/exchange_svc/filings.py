"""First-access filing (003 Art.36) as exchange-svc sees it: which departments the gateway says have filed, kept
from `identity.department.changed`, and the refusal of any data use by a principal of a department that has not
filed, where the profile asks for the filing (`govshare_common.sharing.unfiled_use_refused`)."""

from __future__ import annotations

import logging

from sqlalchemy import text

from govshare_common.auth import Principal
from govshare_common.db import UnitOfWork
from govshare_common.errors import Forbidden
from govshare_common.events import Envelope
from govshare_common.sharing import FLOW_REFUSALS, unfiled_use_refused

log = logging.getLogger("govshare.exchange.filings")


async def department_changed(env: Envelope, uow: UnitOfWork) -> None:
    """`identity.department.changed`: keep whether the department has filed."""
    await uow.execute(
        text(
            "INSERT INTO department_filing (department_code, filed, changed_at) VALUES (:code, :filed, :at) "
            "ON CONFLICT (department_code) DO UPDATE SET filed = excluded.filed, changed_at = excluded.changed_at"
        ),
        {"code": str(env.data["code"]), "filed": bool(env.data.get("filed")), "at": env.time},
    )


async def has_filed(uow: UnitOfWork, department: str) -> bool:
    filed = await uow.execute(text("SELECT filed FROM department_filing WHERE department_code = :d"), {"d": department})
    return bool(filed.scalar_one_or_none())


async def require_filed(uow: UnitOfWork, principal: Principal, *, filing_required: bool) -> None:
    """A 403 `department_not_filed` for a principal whose department owes its filing; the platform office, which
    has no department, files nothing."""
    if principal.department is None:
        return
    filed = await has_filed(uow, principal.department) if filing_required else True
    if unfiled_use_refused(filing_required=filing_required, filed=filed):
        log.warning(
            "data access denied: department %s has not filed, principal %s", principal.department, principal.subject
        )
        zh, en = FLOW_REFUSALS["department_not_filed"]
        raise Forbidden(
            zh,
            en,
            code="department_not_filed",
            details={"department": principal.department, "reason": "department_not_filed"},
        )
