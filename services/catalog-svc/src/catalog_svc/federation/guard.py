"""Every incoming peer call to catalog-svc: the shared rule (`govshare_common.peer_guard`: signed by a
registered peer, with the relation the call needs, a nonce not seen before) over this service's own register
of peers and its own nonces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request

from govshare_common.db import UnitOfWork
from govshare_common.message_signatures import REPLAY_WINDOW_SECONDS
from govshare_common.peer_guard import PEER_KIND, PeerCallRefused, verify_peer_call

from catalog_svc.federation import store

__all__ = ["PEER_KIND", "PeerCallRefused", "forget_old_nonces", "verified_peer"]


async def verified_peer(uow: UnitOfWork, request: Request, *, relations: tuple[str, ...]) -> dict[str, Any]:
    """The registered peer that signed this request; refused unless it is one, with one of these relations to us."""
    now = uow.clock.now()

    async def lookup(keyid: str) -> dict[str, Any] | None:
        return await store.peer(uow.conn, keyid)

    async def remember(keyid: str, nonce: str) -> bool:
        return await store.remember_nonce(uow.conn, keyid, nonce, now=now)

    call = await verify_peer_call(
        request,
        public_url=request.app.state.settings.federation_public_url,
        lookup=lookup,
        remember_nonce=remember,
        now=now,
        relations=relations,
    )
    return call.peer


async def forget_old_nonces(uow: UnitOfWork) -> None:
    """Nonces outlive the replay window twice over; a message older than that is refused for its `created`."""
    await store.forget_nonces(uow.conn, before=uow.clock.now() - timedelta(seconds=2 * REPLAY_WINDOW_SECONDS))
