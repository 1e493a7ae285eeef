"""The connector's one way to the platform: HTTPS to the gateway with its machine client's credentials.

The access token is fetched with client_credentials (over the bound client certificate where configured) and
renewed ahead of its expiry on the local monotonic clock, from `expires_in` rather than the token's own `exp`,
so a connector whose clock is off by minutes still renews in time. Every call has a timeout; a failure is an
exception the caller retries with backoff, never a hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from connector.config import PlatformSection

log = logging.getLogger("govshare.connector.platform")


class PlatformUnavailable(Exception):
    """The platform could not be reached or answered 5xx / 429: try again later."""


class PlatformRefused(Exception):
    """The platform answered with a 4xx refusal in its error shape."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('code')}: {body.get('message')}")
        self.status = status
        self.code = str(body.get("code") or "")
        self.body = body

    @property
    def details(self) -> Any:
        return self.body.get("details")


def _path(code: str) -> str:
    return f"/api/v1/exchange/resources/{quote(code, safe='')}"


class Platform:
    def __init__(self, cfg: PlatformSection) -> None:
        self.cfg = cfg
        cert = (cfg.client_cert, cfg.client_key) if cfg.client_cert and cfg.client_key else None
        self.http = httpx.AsyncClient(
            base_url=cfg.gateway_url.rstrip("/"),
            timeout=httpx.Timeout(cfg.timeout_seconds, connect=min(cfg.timeout_seconds, 10.0)),
            cert=cert,
            verify=cfg.ca_file or True,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self.http.aclose()

    async def token(self, *, force: bool = False) -> str:
        async with self._lock:
            if self._token and not force and time.monotonic() < self._renew_at:
                return self._token
            try:
                r = await self.http.post(
                    "/auth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.cfg.client_id,
                        "client_secret": self.cfg.secret(),
                    },
                )
            except httpx.HTTPError as exc:
                raise PlatformUnavailable(f"token: {type(exc).__name__}: {exc}") from exc
            body = _body(r)
            if r.status_code >= 500 or r.status_code == 429:
                raise PlatformUnavailable(f"token: {r.status_code}")
            if r.status_code != 200:
                raise PlatformRefused(r.status_code, body)
            self._token = str(body["access_token"])
            ttl = float(body.get("expires_in") or 300)
            self._renew_at = time.monotonic() + ttl * 0.7
            return self._token

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        for attempt in (0, 1):
            token = await self.token(force=attempt == 1)
            try:
                r = await self.http.request(
                    method,
                    path,
                    params=params,
                    json=json_body,
                    content=content,
                    headers={"Authorization": f"Bearer {token}", **(headers or {})},
                )
            except httpx.HTTPError as exc:
                raise PlatformUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            if r.status_code == 401 and attempt == 0:
                continue  # revoked or expired early: one fresh token, then believe the answer
            if r.status_code >= 500 or r.status_code == 429:
                raise PlatformUnavailable(f"{method} {path}: {r.status_code} {r.text[:200]}")
            body = _body(r)
            if r.status_code >= 400:
                raise PlatformRefused(r.status_code, body)
            return body
        raise AssertionError("unreachable")

    # the exchange API ------------------------------------------------------------------------------------

    async def ingest(self, resource: str, batch_id: str, lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
        body = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines).encode()
        result: dict[str, Any] = await self.call(
            "POST",
            f"{_path(resource)}/batches",
            params={"batch_id": batch_id, "format": "jsonl"},
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        return result

    async def resource_items(self, resource: str, purpose: str | None = None) -> dict[str, Any]:
        headers = {"X-Govshare-Purpose": purpose} if purpose else None
        result: dict[str, Any] = await self.call("GET", f"{_path(resource)}/items", headers=headers)
        return result

    async def subscribe(self, resource: str, purpose: str, *, from_start: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "POST",
            f"{_path(resource)}/subscriptions",
            json_body={"from_start": from_start},
            headers={"X-Govshare-Purpose": purpose},
        )
        return result

    async def changes(self, resource: str, sub_id: str, purpose: str, *, after: int, limit: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET",
            f"{_path(resource)}/subscriptions/{sub_id}/changes",
            params={"after": after, "limit": limit},
            headers={"X-Govshare-Purpose": purpose},
        )
        return result

    async def ack(self, resource: str, sub_id: str, purpose: str, cursor: int) -> None:
        # The door lets a consumer's call reach a resource only for a stated purpose, an acknowledgement too.
        await self.call(
            "POST",
            f"{_path(resource)}/subscriptions/{sub_id}/ack",
            json_body={"cursor": cursor},
            headers={"X-Govshare-Purpose": purpose},
        )

    async def heartbeat(self, name: str, report: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("PUT", f"/api/v1/exchange/connectors/{quote(name)}", json_body=report)
        return result


def _body(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {"code": "not_json", "message": r.text[:200]}
    return data if isinstance(data, dict) else {"items": data}
