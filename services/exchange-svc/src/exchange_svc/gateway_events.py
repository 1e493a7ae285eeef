"""What exchange-svc does with the gateway's events: a department's first-access filing is kept
(filings.department_changed); a year's holidays entered or corrected is stored in this service's calendar copy,
then every open dispute's due date is recounted on it (disputes.recount)."""

from __future__ import annotations

from collections.abc import Callable

from govshare_common.calendar_store import YEAR_PUBLISHED, CalendarService, published_year_change
from govshare_common.consumer import Subscription
from govshare_common.db import UnitOfWork
from govshare_common.events import Envelope

from exchange_svc import disputes, filings


def gateway_follower(calendar: Callable[[], CalendarService]) -> Subscription:
    sub = Subscription(source="gateway")
    sub.on("identity.department.changed")(filings.department_changed)

    @sub.on(YEAR_PUBLISHED)
    async def _year_published(env: Envelope, uow: UnitOfWork) -> None:
        before, after, year = await published_year_change(calendar(), uow, env)
        await disputes.recount(uow, before, after, year=year)

    return sub
