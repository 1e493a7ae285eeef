"""The gateway's department events: a department seen onboarded for the first time owes its catalog within
the profile's time (flows.department_onboarded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope

from catalog_svc import flows


def onboarding_follower(state: Callable[[], Any]) -> Subscription:
    sub = Subscription(source="gateway")

    @sub.on("identity.department.changed")
    async def _department(env: Envelope, uow: UnitOfWork) -> None:
        if env.data.get("status", "active") != "active":
            return
        app_state = state()
        await flows.department_onboarded(
            uow,
            calendar=app_state.calendar,
            profile=app_state.profile,
            department_code=str(env.data["code"]),
            department_name=env.data.get("name"),
        )

    return sub
