"""The platform's state for the platform office: every service's readiness, and per source service the
events published per second, the outbox backlog and the consumers' lag, read from each service's /readyz and
/metrics (the same figures Prometheus scrapes). The last sample is kept in memory only to turn totals into
rates; it is not platform state."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from govshare_common.clock import Clock
from govshare_common.settings import Settings

from console.domain import SERVICE_LABELS, Sample, parse_metrics, rate, topic_figures


class PlatformStatus:
    def __init__(self, settings: Settings, clock: Clock, profile_name: str) -> None:
        self.settings = settings
        self.clock = clock
        self.profile_name = profile_name
        self.http = httpx.AsyncClient(timeout=2.0)
        self._previous: dict[str, tuple[float, float]] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def _readiness(self, name: str, url: str) -> dict[str, Any]:
        try:
            resp = await self.http.get(f"{url}/readyz")
            ready = resp.status_code == 200
            detail = "、".join(f"{k}: {v}" for k, v in resp.json().get("checks", {}).items())
        except (httpx.HTTPError, ValueError) as exc:
            ready, detail = False, f"无法连接（{type(exc).__name__}）"
        return {"name": name, "label": SERVICE_LABELS.get(name, name), "ready": ready, "detail": detail or "—"}

    async def _metrics(self, url: str) -> list[Sample]:
        try:
            resp = await self.http.get(f"{url}/metrics")
            return parse_metrics(resp.text) if resp.status_code == 200 else []
        except httpx.HTTPError:
            return []

    async def sample(self) -> dict[str, Any]:
        urls = self.settings.service_urls
        names = [n for n in urls if not n.endswith("-internal")]  # a second listener of a service, not another
        ready, metrics = await asyncio.gather(
            asyncio.gather(*(self._readiness(n, urls[n]) for n in names)),
            asyncio.gather(*(self._metrics(urls[n]) for n in names)),
        )
        at = time.monotonic()
        figures = topic_figures(dict(zip(names, metrics, strict=True)))
        topics = []
        for topic, f in figures.items():
            topics.append(
                {
                    "topic": topic,
                    "published_total": int(f.published_total),
                    "events_per_second": rate(f.published_total, at, self._previous.get(topic)),
                    "unpublished": int(f.unpublished),
                    "consumer_lag": int(f.consumer_lag),
                    "relay_lag_seconds": round(f.relay_lag_seconds, 1),
                    "quarantined": int(f.quarantined),
                    "share_via_kafka": (
                        round(f.handled_via_kafka / handled, 4)
                        if (handled := f.handled_via_kafka + f.handled_other_ways)
                        else None
                    ),
                }
            )
            self._previous[topic] = (f.published_total, at)
        return {
            "services": list(ready),
            "topics": topics,
            "profile": self.profile_name,
            "sampled_at": self.clock.now().isoformat(),
        }
