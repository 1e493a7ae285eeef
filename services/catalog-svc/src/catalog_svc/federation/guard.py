"""Every incoming peer call: its RFC 9421 signature, by a registered peer, with a nonce not seen before.

The signature is the call's authentication (the door lets these paths through without a token). A refusal is
the platform's error shape with status 401 (403 for a registered peer asking what its relation does not allow),
and its reason and the claimed peer go to the door's access record (the X-Govshare-* answer headers, which the
door logs and does not pass on), so every refused peer call is recorded as a denied access.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request

from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError
from govshare_common.message_signatures import REPLAY_WINDOW_SECONDS, SignatureRefused, read_signature, verify_request
from govshare_common.platform_identity import parse_public_key

from catalog_svc.federation import store

PEER_KIND = "federation_peer"


class PeerCallRefused(AppError):
    status = 401

    def __init__(self, code: str, zh: str, en: str, *, keyid: str | None, status: int = 401) -> None:
        headers = {"X-Govshare-Reason": code, "X-Govshare-Kind": PEER_KIND}
        if keyid:
            headers["X-Govshare-Principal"] = f"peer:{keyid}"
        super().__init__(zh, en, code=code, status=status, headers=headers, details={"keyid": keyid})


def target_uri(request: Request) -> str:
    """The URI the peer signed: this platform's public address (what the peer registered) and the path as sent."""
    settings = request.app.state.settings
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    path = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    if settings.federation_public_url:
        return str(settings.federation_public_url).rstrip("/") + path
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{request.headers.get('host', request.url.netloc)}{path}"


async def verified_peer(uow: UnitOfWork, request: Request, *, relations: tuple[str, ...]) -> dict[str, Any]:
    """The registered peer that signed this request; refused unless it is one, with one of these relations to us."""
    keyid: str | None = None
    try:
        sig = read_signature(request.headers)
        keyid = sig.keyid
        peer = await store.peer(uow.conn, sig.keyid)
        if peer is None:
            raise PeerCallRefused(
                "peer_unknown",
                f"平台 {sig.keyid} 未登记为本平台的对端平台，拒绝其调用。",
                f"Platform {sig.keyid} is not a registered peer of this platform.",
                keyid=keyid,
            )
        public_key = parse_public_key(peer["public_key"])
        assert public_key is not None  # checked when registered
        body = await request.body()
        now = uow.clock.now()
        verify_request(
            sig,
            method=request.method,
            target_uri=target_uri(request),
            headers=request.headers,
            body=body,
            public_key=public_key,
            now=now.timestamp(),
        )
    except SignatureRefused as exc:
        raise PeerCallRefused(exc.code, exc.zh, exc.en, keyid=keyid) from None
    if peer["relation"] not in relations:
        raise PeerCallRefused(
            "peer_relation_forbids",
            f"对端平台 {keyid} 登记为{'上级' if peer['relation'] == 'parent' else '下级'}平台，无权进行此调用。",
            f"Peer {keyid} is registered as this platform's {peer['relation']}; this call is for: "
            f"{', '.join(relations)}.",
            keyid=keyid,
            status=403,
        )
    if not await store.remember_nonce(uow.conn, sig.keyid, sig.nonce, now=now):
        raise PeerCallRefused(
            "nonce_replayed",
            "该消息的随机数（nonce）已使用过：重放的消息被拒绝。",
            "This message's nonce was seen before: a replayed message is refused.",
            keyid=keyid,
        )
    return peer


async def forget_old_nonces(uow: UnitOfWork) -> None:
    """Nonces outlive the replay window twice over; a message older than that is refused for its `created`."""
    await store.forget_nonces(uow.conn, before=uow.clock.now() - timedelta(seconds=2 * REPLAY_WINDOW_SECONDS))
