"""What catalog-svc does with the gateway's events: a department seen onboarded for the first time owes its
catalog within the profile's time (flows.department_onboarded); a year's holidays entered or corrected
recounts the open update obligations (flows.recount_obligations), after the year is stored in this service's
calendar copy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from govshare_common.calendar_store import YEAR_PUBLISHED, published_year_change
from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope

from catalog_svc import flows


def gateway_follower(state: Callable[[], Any]) -> Subscription:
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

    @sub.on(YEAR_PUBLISHED)
    async def _year_published(env: Envelope, uow: UnitOfWork) -> None:
        before, after, year = await published_year_change(state().calendar, uow, env)
        await flows.recount_obligations(uow, before, after, year=year)

    return sub
