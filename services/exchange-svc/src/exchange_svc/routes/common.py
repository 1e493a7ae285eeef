"""What every exchange handler shares: roles, the purpose header, pagination, the identifier hash key.

Resource-bound routes are /api/v1/exchange/resources/<code>/…, the code percent-encoded (it contains "/"), so
the gateway checks the grant at the door; `{code:path}` takes the decoded code back apart here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request

from govshare_common.auth import Principal, require_roles
from govshare_common.bounds import MAX_OFFSET
from govshare_common.service import UoW

from exchange_svc import filings
from exchange_svc.sealing import Sealer

PREFIX = "/api/v1/exchange"
RESOURCE = f"{PREFIX}/resources/{{code:path}}"

DEPT_ROLES = ("dept_admin", "dept_reviewer", "dept_system")
Reader = Annotated[Principal, Depends(require_roles(*DEPT_ROLES, "platform_admin", "federation_peer"))]
Sender = Annotated[Principal, Depends(require_roles("dept_system", "dept_admin"))]
DeptAdmin = Annotated[Principal, Depends(require_roles("dept_admin"))]
PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]


async def _data_user(request: Request, uow: UoW, principal: Reader) -> Principal:
    """A reader whose department may use shared data: filed, where the profile asks for it (003 Art.36)."""
    profile = request.app.state.profile
    await filings.require_filed(uow, principal, filing_required=profile.first_access_filing_required)
    return principal


# Every route that hands out or works on a resource's data: a Reader, refused while its department owes its filing.
DataReader = Annotated[Principal, Depends(_data_user)]
Staff = Annotated[Principal, Depends(require_roles(*DEPT_ROLES, "platform_admin"))]
Purpose = Annotated[
    str | None,
    Header(alias="X-Govshare-Purpose", description="共享用途：administrative_basis / work_reference / …"),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="每页条数")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="跳过条数")]


def get_sealer(request: Request) -> Sealer:
    return request.app.state.sealer  # type: ignore[no-any-return]


# The keyring's sealing of personal data at rest (exchange_svc.sealing).
Sealing = Annotated[Sealer, Depends(get_sealer)]


def hash_key(request: Request) -> bytes:
    return request.app.state.settings.hash_key()  # type: ignore[no-any-return]


def page(items: list[Any], total: int, limit: int, offset: int, **extra: Any) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset, **extra}
