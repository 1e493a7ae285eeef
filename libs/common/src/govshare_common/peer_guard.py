"""The receiving side of every platform-to-platform call, for each service that answers one: its RFC 9421
signature, by a registered peer, with a relation that allows the call, and a nonce not seen before.

The signature is the call's authentication (the door lets these paths through without a token). A refusal is
the platform's error shape with status 401 (403 for a registered peer asking what its relation does not allow),
and its reason and the claimed peer go to the door's access record (the X-Govshare-* answer headers, which the
door logs and does not pass on), so every refused peer call is recorded as a denied access.

Each service keeps its own register of peers and its own nonces (catalog-svc its office's register, the others
`govshare_common.peer_register`); it passes how to read one and remember the other, so the rule lives here once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request, Response

from govshare_common import peer_register
from govshare_common.db import UnitOfWork
from govshare_common.error_handlers import error_body
from govshare_common.errors import AppError
from govshare_common.message_signatures import SignatureRefused, read_signature, sign_response, verify_request
from govshare_common.platform_identity import PlatformIdentity, parse_public_key

PEER_KIND = "federation_peer"

PeerLookup = Callable[[str], Awaitable[dict[str, Any] | None]]
NonceMemory = Callable[[str, str], Awaitable[bool]]


class PeerCallRefused(AppError):
    status = 401

    def __init__(self, code: str, zh: str, en: str, *, keyid: str | None, status: int = 401) -> None:
        headers = {"X-Govshare-Reason": code, "X-Govshare-Kind": PEER_KIND}
        if keyid:
            headers["X-Govshare-Principal"] = f"peer:{keyid}"
        super().__init__(zh, en, code=code, status=status, headers=headers, details={"keyid": keyid})


@dataclass(frozen=True)
class VerifiedCall:
    peer: dict[str, Any]
    nonce: str
    idempotency_key: str
    body: bytes


def target_uri(request: Request, public_url: str | None) -> str:
    """The URI the peer signed: this platform's public address (what the peer registered) and the path as sent."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    path = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    if public_url:
        return str(public_url).rstrip("/") + path
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{request.headers.get('host', request.url.netloc)}{path}"


async def verify_peer_call(
    request: Request,
    *,
    public_url: str | None,
    lookup: PeerLookup,
    remember_nonce: NonceMemory,
    now: datetime,
    relations: Collection[str],
) -> VerifiedCall:
    """The registered peer that signed this request; refused unless it is one, with one of `relations` to us."""
    keyid: str | None = None
    try:
        sig = read_signature(request.headers)
        keyid = sig.keyid
        peer = await lookup(sig.keyid)
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
        idempotency_key = verify_request(
            sig,
            method=request.method,
            target_uri=target_uri(request, public_url),
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
            f"Peer {keyid} is registered as this platform's {peer['relation']}; this call is for a "
            f"{' or '.join(sorted(relations))}.",
            keyid=keyid,
            status=403,
        )
    if not await remember_nonce(sig.keyid, sig.nonce):
        raise PeerCallRefused(
            "nonce_replayed",
            "该消息的随机数（nonce）已使用过：重放的消息被拒绝。",
            "This message's nonce was seen before: a replayed message is refused.",
            keyid=keyid,
        )
    return VerifiedCall(peer=peer, nonce=sig.nonce, idempotency_key=idempotency_key, body=body)


async def verify_by_register(uow: UnitOfWork, request: Request, *, relations: Collection[str]) -> VerifiedCall:
    """`verify_peer_call` against the service's own peer register (`govshare_common.peer_register`)."""
    now = uow.clock.now()

    async def lookup(keyid: str) -> dict[str, Any] | None:
        return await peer_register.peer(uow.conn, keyid)

    async def remember(keyid: str, nonce: str) -> bool:
        return await peer_register.remember_nonce(uow.conn, keyid, nonce, now=now)

    return await verify_peer_call(
        request,
        public_url=request.app.state.settings.federation_public_url,
        lookup=lookup,
        remember_nonce=remember,
        now=now,
        relations=relations,
    )


def signed_answer_headers(
    me: PlatformIdentity, call: VerifiedCall, *, status: int, body: bytes, now: datetime
) -> dict[str, str]:
    """The answer signed for this very call (its nonce), and the peer named for the door's access record."""
    return {
        **sign_response(
            status=status, body=body, key=me.key, keyid=me.keyid, created=int(now.timestamp()), nonce=call.nonce
        ),
        "X-Govshare-Principal": f"peer:{call.peer['division_code']}",
        "X-Govshare-Kind": PEER_KIND,
    }


def signed_json(
    me: PlatformIdentity, call: VerifiedCall, status: int, answer: dict[str, Any], *, now: datetime
) -> Response:
    """A JSON answer to a verified peer call, signed for it; a refusal's code goes to the door's access record."""
    content = json.dumps(answer, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    headers = signed_answer_headers(me, call, status=status, body=content, now=now)
    if status >= 400:
        headers["X-Govshare-Reason"] = str(answer.get("code", ""))
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def refusal(request: Request, exc: AppError) -> tuple[int, dict[str, Any]]:
    """An error as a peer is answered it: the status and the platform's one error shape."""
    return exc.status, error_body(request, exc.code, exc.message_zh, exc.message_en, exc.details)


def identity_of(request: Request) -> PlatformIdentity:
    """This platform's identity; refused while none is configured (it takes no peer calls then)."""
    me: PlatformIdentity | None = getattr(request.app.state, "federation_identity", None)
    if me is None:
        raise AppError(
            "本平台尚未配置平台身份，不接受对端平台的调用。",
            "This platform has no identity configured; it takes no peer calls.",
            code="federation_not_configured",
            status=409,
        )
    return me
