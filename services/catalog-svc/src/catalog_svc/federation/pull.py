"""Pulling each peer's change feed (a child's whole catalog; from the parent, what it shares across levels):
signed requests to the peer's door and its signed answers checked (`govshare_common.peer_client`), each page
applied in one transaction with the cursor, so a page is mirrored exactly when its cursor moves.

Runs as a background loop in every replica; a per-child lock taken in the page's transaction makes one replica
pull a child at a time. A child that cannot be reached, or answers wrongly, is recorded (`last_error`) and
tried again next round from the same cursor — which is how a child away for hours converges when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from govshare_common.db import Database
from govshare_common.peer_client import PeerClient, PeerUnavailable
from govshare_common.platform_identity import PlatformIdentity

from catalog_svc.federation import from_parent, mirror, store

log = logging.getLogger("govshare.catalog.federation")

FEED_PATH = "/api/v1/catalog/federation/changes"
PAGE = 1000
# Pages in one round per child before the others get their turn.
ROUNDS_PAGES = 200


class PullFailed(Exception):
    pass


class Puller:
    def __init__(self, db: Database, me: PlatformIdentity, *, interval: float, verify_tls: bool | str = True) -> None:
        self.db = db
        self.me = me
        self.interval = interval
        self.wake = asyncio.Event()
        # A page of 1,000 resources with their search documents takes longer than a request or a query.
        self.client = PeerClient(me, db.clock, verify_tls=verify_tls, timeout=30.0)

    async def close(self) -> None:
        await self.client.close()

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a round that fails is logged and tried again; the loop never dies of it
                log.exception("federation pull round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
            self.wake.clear()

    async def round(self) -> None:
        async with self.db.unit_of_work() as uow:
            codes = await store.peer_codes(uow.conn)
        for code in codes:
            await self.catch_up(code)

    async def catch_up(self, code: str) -> None:
        """Pull the peer's pages until its head; the next page is fetched while this one is applied."""
        async with self.db.unit_of_work() as uow:
            peer = await store.peer(uow.conn, code)
        if peer is None:
            return
        ahead: asyncio.Task[dict[str, Any]] | None = None
        try:
            page = await self.fetch(peer)
            for _ in range(ROUNDS_PAGES):
                more = bool(page["changes"]) and int(page["next"]) < int(page["head"])
                ahead = asyncio.create_task(self.fetch({**peer, "cursor": int(page["next"])})) if more else None
                if not await self.apply(code, page) or ahead is None:
                    return
                page, ahead = await ahead, None
        except PullFailed as exc:
            log.warning("federation pull from %s failed: %s", code, exc)
            async with self.db.unit_of_work() as uow:
                await store.pull_failed(uow.conn, code, error=str(exc), now=uow.clock.now())
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(BaseException):
                    await ahead

    async def apply(self, code: str, page: dict[str, Any]) -> bool:
        """Apply a page fetched from the child's cursor, unless the cursor moved meanwhile (another replica
        applied it, or a resync began): False then, and the page is dropped."""
        async with self.db.unit_of_work() as uow:
            if not await store.try_lock_pull(uow.conn, code):
                return False
            # Locked: a resync committed after this read would otherwise be undone by this page's cursor.
            peer = await store.peer(uow.conn, code, lock=True)
            if peer is None or int(peer["cursor"]) != int(page["after"]):
                return False
            applying = mirror.apply if peer["relation"] == "child" else from_parent.apply
            cursor = await applying(uow, peer, page)
            await store.pulled(
                uow.conn,
                code,
                cursor=cursor,
                head=int(page["head"]),
                received=len(page["changes"]),
                now=uow.clock.now(),
            )
            return True

    async def fetch(self, peer: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self.client.send(
                peer,
                "GET",
                f"{FEED_PATH}?after={int(peer['cursor'])}&limit={PAGE}",
                idempotency_key=f"feed-{peer['division_code']}-{int(peer['cursor'])}-{uuid.uuid4().hex[:8]}",
            )
        except PeerUnavailable as exc:
            raise PullFailed(str(exc)) from None
        page = answer.body
        if answer.status != 200:
            raise PullFailed(f"answered {answer.status}: {page.get('code')}: {page.get('message')}")
        try:
            int(page["head"]), int(page["next"]), int(page["after"])
            if not isinstance(page["changes"], list):
                raise TypeError("changes")
        except (ValueError, KeyError, TypeError) as exc:
            raise PullFailed(f"answer not a change feed page: {exc}") from None
        return page
