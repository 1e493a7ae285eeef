"""Which profile a share request is handled under (issue 16 item 6): its provider's jurisdiction's — a
jurisdiction hosted on this platform (Feicheng on Tai'an's) has its own, every other department runs under the
platform's (`govshare_common.jurisdictions`). The jurisdiction of each department comes from the gateway's
`identity.department.changed`; a request keeps the profile it was submitted under to its end."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope
from govshare_common.jurisdictions import profile_named
from govshare_common.profiles import Profile


async def department_changed(env: Envelope, uow: UnitOfWork) -> None:
    """`identity.department.changed`: keep the department's jurisdiction and its profile (None: the platform's)."""
    await uow.conn.execute(
        text(
            "INSERT INTO department_jurisdiction (department_code, jurisdiction_code, profile, updated_at) "
            "VALUES (:d, :j, :p, :at) ON CONFLICT (department_code) DO UPDATE SET "
            "jurisdiction_code = EXCLUDED.jurisdiction_code, profile = EXCLUDED.profile, updated_at = EXCLUDED.updated_at"
        ),
        {
            "d": str(env.data["code"]),
            "j": env.data.get("jurisdiction_code"),
            "p": env.data.get("profile"),
            "at": uow.clock.now(),
        },
    )


async def department_profile(uow: UnitOfWork, platform: Profile, department: str) -> Profile:
    """The profile `department`'s business is handled under."""
    found = await uow.conn.execute(
        text("SELECT profile FROM department_jurisdiction WHERE department_code = :d"), {"d": department}
    )
    return profile_named(found.scalar_one_or_none(), platform)


def request_profile(row: dict[str, Any], platform: Profile) -> Profile:
    """The profile a stored request is handled under: the one fixed at its submission."""
    return profile_named(row.get("profile"), platform)
