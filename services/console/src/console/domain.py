"""The console's rules, pure: what the browser may load (the security headers), which built file a path
names, and how the platform's metrics read as per-topic event rates and consumer lag."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath

from govshare_common.workdays import WorkingCalendar

# No inline script may run (an injected <script> or on*= attribute is refused); styles may be inline because
# Element Plus positions popups with style attributes. Every asset is the console's own: no CDN, no web font.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

SERVICE_LABELS = {
    "gateway": "统一身份认证与访问网关",
    "catalog": "政务信息资源目录",
    "request": "共享申请与授权",
    "exchange": "数据交换",
    "audit": "审计与监督",
    "connector": "前置机",
    "console": "管理控制台",
}


def asset_path(url_path: str) -> PurePosixPath | None:
    """The built file a /console/<path> names, or None when the path is a page of the single-page app
    (served index.html) — and never a path that climbs out of the build."""
    rest = url_path.removeprefix("/console").lstrip("/")
    if not rest:
        return None
    parts = PurePosixPath(rest).parts
    if any(p in ("..", ".") or p.startswith(".") for p in parts):
        return None
    if "." not in parts[-1]:
        return None  # a client-side route such as /console/review/worklist
    return PurePosixPath(*parts)


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


# The families the status reads; the rest of an exposition (latency histograms per route…) is skipped unparsed.
READ_FAMILIES = (
    "govshare_outbox_published_total",
    "govshare_outbox_unpublished",
    "govshare_outbox_relay_lag_seconds",
    "govshare_consumer_lag",
    "govshare_events_quarantine_held",
    "govshare_events_handled_total",
)


def parse_metrics(text: str, families: tuple[str, ...] = READ_FAMILIES) -> list[Sample]:
    """Prometheus text exposition: the samples of the given metric families."""
    samples = []
    for line in text.splitlines():
        if not line.startswith(families):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        try:
            value = float(m["value"])
        except ValueError:
            continue
        samples.append(Sample(m["name"], dict(_LABEL.findall(m["labels"] or "")), value))
    return samples


@dataclass(frozen=True)
class TopicFigures:
    published_total: float
    unpublished: float
    consumer_lag: float
    relay_lag_seconds: float = 0.0
    quarantined: float = 0.0  # events of this source its consumers set aside, waiting for a retry or a skip
    handled_via_kafka: float = 0.0
    handled_other_ways: float = 0.0  # through the feed: catch-up, gap fills, snapshot rebuilds, retries


def topic_figures(samples_by_service: dict[str, list[Sample]]) -> dict[str, TopicFigures]:
    """Per source service: events its relay published, events still in its outbox and the oldest one's age, how
    far behind the other services' consumers are on it, what they quarantined, and how its events reached them.
    Each service's own samples are read by its own labels, so a shared registry (several services in one
    process) is not counted twice."""
    own: dict[str, dict[str, float]] = {}  # source -> figure -> value
    for service, samples in samples_by_service.items():
        for s in samples:
            if s.name in ("govshare_outbox_published_total", "govshare_outbox_unpublished") or (
                s.name == "govshare_outbox_relay_lag_seconds"
            ):
                if s.labels.get("schema") == service:
                    figures = own.setdefault(service, {})
                    figures[s.name] = figures.get(s.name, 0.0) + s.value
            elif s.labels.get("service") == service:
                figures = own.setdefault(s.labels.get("source", ""), {})
                name = s.name
                if name == "govshare_events_handled_total":
                    name += ":kafka" if s.labels.get("via") == "kafka" else ":other"
                figures[name] = figures.get(name, 0.0) + s.value
    return {
        topic: TopicFigures(
            published_total=f.get("govshare_outbox_published_total", 0.0),
            unpublished=f.get("govshare_outbox_unpublished", 0.0),
            consumer_lag=f.get("govshare_consumer_lag", 0.0),
            relay_lag_seconds=f.get("govshare_outbox_relay_lag_seconds", 0.0),
            quarantined=f.get("govshare_events_quarantine_held", 0.0),
            handled_via_kafka=f.get("govshare_events_handled_total:kafka", 0.0),
            handled_other_ways=f.get("govshare_events_handled_total:other", 0.0),
        )
        for topic, f in sorted(own.items())
    }


def rate(now_total: float, now_at: float, before: tuple[float, float] | None) -> float | None:
    """Events per second since the previous sample `(total, at)`; None with no earlier sample to compare."""
    if before is None:
        return None
    total, at = before
    if now_at <= at or now_total < total:
        return None
    return round((now_total - total) / (now_at - at), 3)


def working_days_left(calendar: WorkingCalendar, today: date, due: date) -> int:
    """Working days from today to a due date: 0 on the day itself, negative once it has passed."""
    if due >= today:
        return calendar.working_days_between(today, due).days
    return -calendar.working_days_between(due, today).days
