"""The calling side of a platform-to-platform call: an RFC 9421 signed request to a registered peer's door,
and the peer's signed answer checked (its key, this request's nonce) before anything in it is believed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from govshare_common.clock import Clock
from govshare_common.message_signatures import SignatureRefused, new_nonce, sign_request, verify_response
from govshare_common.platform_identity import PlatformIdentity, parse_public_key


class PeerUnavailable(Exception):
    """The peer could not be asked or did not answer as a peer (unreachable, 5xx, unsigned): try again later."""


@dataclass(frozen=True)
class PeerAnswer:
    status: int
    body: dict[str, Any]


class PeerClient:
    def __init__(self, me: PlatformIdentity, clock: Clock, *, verify_tls: bool | str = True, timeout: float = 10.0):
        self.me = me
        self.clock = clock
        self.http = httpx.AsyncClient(timeout=timeout, verify=verify_tls)

    async def close(self) -> None:
        await self.http.aclose()

    async def send(
        self,
        peer: dict[str, Any],
        method: str,
        path: str,
        *,
        idempotency_key: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> PeerAnswer:
        """The peer's answer, signed by it for this request; a 4xx answer is the peer's refusal (error shape)."""
        url = f"{peer['base_url'].rstrip('/')}{path}"
        content = b"" if body is None else json.dumps(body, ensure_ascii=False, default=str).encode()
        nonce = new_nonce()
        signed = sign_request(
            method=method,
            target_uri=url,
            body=content,
            key=self.me.key,
            keyid=self.me.keyid,
            created=int(self.clock.now().timestamp()),
            idempotency_key=idempotency_key,
            nonce=nonce,
        )
        sent = {**(headers or {}), **signed}
        if body is not None:
            sent["Content-Type"] = "application/json"
        try:
            resp = await self.http.request(method, url, content=content, headers=sent)
        except httpx.HTTPError as exc:
            raise PeerUnavailable(f"unreachable: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 500:
            raise PeerUnavailable(f"answered {resp.status_code}: {resp.text[:300]}")
        public_key = parse_public_key(peer["public_key"])
        assert public_key is not None
        try:
            verify_response(
                status=resp.status_code,
                headers=resp.headers,
                body=resp.content,
                public_key=public_key,
                keyid=peer["division_code"],
                nonce=nonce,
                now=self.clock.now().timestamp(),
            )
        except SignatureRefused as exc:
            # An unsigned 4xx is the peer's door refusing before the service (e.g. a rate limit), or not the peer.
            raise PeerUnavailable(f"answer {resp.status_code} refused: {exc.code}: {resp.text[:200]}") from None
        try:
            parsed = json.loads(resp.content) if resp.content else {}
        except ValueError:
            raise PeerUnavailable(f"answer {resp.status_code} is not JSON") from None
        if not isinstance(parsed, dict):
            raise PeerUnavailable(f"answer {resp.status_code} is not a JSON object")
        return PeerAnswer(resp.status_code, parsed)
