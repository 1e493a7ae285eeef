"""Tokens across hosts whose clocks differ: a gateway a few seconds ahead issues tokens every service still
honours; one ten minutes ahead issues tokens nobody honours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from govshare_common.clock import Clock


class AheadClock:
    """The clock of a host that runs `ahead` in front of the true time."""

    def __init__(self, ahead: timedelta) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def test_a_token_from_a_gateway_ten_seconds_ahead_works_ten_minutes_ahead_does_not(platform) -> None:
    for ahead, expected in ((timedelta(seconds=10), 200), (timedelta(minutes=10), 401)):
        clock: Clock = AheadClock(ahead)
        async with platform("gateway", "catalog", clock=clock) as p:
            token = await p.token()
            headers = {"Authorization": f"Bearer {token}"}
            async with p.client() as door, p.client("catalog") as direct:
                through_door = await door.get("/api/v1/catalog/resources", headers=headers)
                on_its_port = await direct.get("/api/v1/catalog/resources", headers=headers)
            assert (through_door.status_code, on_its_port.status_code) == (expected, expected), (
                ahead,
                through_door.text,
                on_its_port.text,
            )
