"""Delivering cross-level requests and their reports as signed calls, until the peer has them.

Two kinds of mail, both read from the requests themselves, so nothing is lost while a peer is down: a request
`forwarding` towards its owner goes to its next hop (the Idempotency-Key is the request's id here, so a retry is
answered with what the first delivery made); a request received from a peer whose state or grant changed since
the peer was last told is reported back to it (a whole, versioned state, so a report sent twice changes
nothing). Runs in every replica, woken after a change and every interval; a delivery twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from govshare_common.db import Database
from govshare_common.peer_client import PeerClient, PeerUnavailable
from govshare_common.platform_identity import PlatformIdentity

from request_svc import store
from request_svc.federation import forwarding
from request_svc.federation import store as fed_store

log = logging.getLogger("govshare.request.federation")


class Courier:
    def __init__(self, db: Database, me: PlatformIdentity, *, interval: float, verify_tls: bool | str = True) -> None:
        self.db = db
        self.me = me
        self.interval = interval
        self.wake = asyncio.Event()
        self.client = PeerClient(me, db.clock, verify_tls=verify_tls)

    async def close(self) -> None:
        await self.client.close()

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a failed round is logged and tried again; the loop never dies of it
                log.exception("cross-level request delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
            self.wake.clear()

    async def round(self) -> None:
        async with self.db.unit_of_work() as uow:
            outgoing = await fed_store.to_forward(uow.conn)
            reports = await fed_store.to_report(uow.conn)
            peers = await fed_store.peers(uow.conn)
        for row in outgoing:
            await self.forward(row, peers.get(row["next_hop"]))
        for row in reports:
            await self.report(row, peers.get(row["consumer_platform"]))

    async def forward(self, row: dict[str, Any], peer: dict[str, Any] | None) -> None:
        if peer is None:
            async with self.db.unit_of_work() as uow:
                await forwarding.attempt_failed(uow, row["id"], error=f"peer {row['next_hop']} is not registered")
            return
        body = dict(row["forward_body"])
        applicant = dict(body.get("applicant") or {})
        applicant["platform"] = applicant.get("platform") or self.me.division_code
        body |= {"request_id": row["id"], "applicant": applicant}
        try:
            answer = await self.client.send(
                peer, "POST", forwarding.FORWARDED_PATH, idempotency_key=f"request-{row['id']}", body=body
            )
        except PeerUnavailable as exc:
            log.warning("forwarding request %s to %s failed: %s", row["id"], peer["division_code"], exc)
            async with self.db.unit_of_work() as uow:
                await forwarding.attempt_failed(uow, row["id"], error=str(exc))
            return
        async with self.db.unit_of_work() as uow:
            if answer.status in (200, 201):
                await forwarding.apply_report(uow, peer["division_code"], answer.body)
            else:
                await forwarding.refused(uow, row["id"], peer=peer["division_code"], error=answer.body)

    async def report(self, row: dict[str, Any], peer: dict[str, Any] | None) -> None:
        if peer is None:
            return
        async with self.db.unit_of_work() as uow:
            body = forwarding.report(row, await store.history(uow.conn, row["id"]))
        error = None
        try:
            answer = await self.client.send(
                peer,
                "POST",
                forwarding.STATUS_PATH,
                idempotency_key=f"report-{row['id']}-{int(row['version'].timestamp() * 1e6)}",
                body=body,
            )
            if answer.status >= 400:
                error = f"refused {answer.status}: {answer.body.get('code')}: {answer.body.get('message')}"
        except PeerUnavailable as exc:
            error = str(exc)
        if error is not None:
            log.warning("reporting request %s to %s failed: %s", row["id"], peer["division_code"], error)
        # A peer that refused the report (a 4xx in its error shape) is not asked again with the same state: the
        # refusal is recorded and the next change is reported anew; one that could not be reached is retried.
        retry = error is not None and not error.startswith("refused ")
        async with self.db.unit_of_work() as uow:
            await fed_store.reported(uow.conn, row["id"], version=row["version"], error=error, done=not retry)
