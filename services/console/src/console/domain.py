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
READ_FAMILIES = ("govshare_outbox_published_total", "govshare_outbox_unpublished", "govshare_consumer_lag")


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


def topic_figures(samples_by_service: dict[str, list[Sample]]) -> dict[str, TopicFigures]:
    """Per source service: events its relay published, events still in its outbox, and how far behind the
    other services' consumers are on it. Each service's own samples are read by its own labels, so a shared
    registry (several services in one process) is not counted twice."""
    published: dict[str, float] = {}
    unpublished: dict[str, float] = {}
    lag: dict[str, float] = {}
    for service, samples in samples_by_service.items():
        for s in samples:
            if s.name == "govshare_outbox_published_total" and s.labels.get("schema") == service:
                published[service] = published.get(service, 0.0) + s.value
            elif s.name == "govshare_outbox_unpublished" and s.labels.get("schema") == service:
                unpublished[service] = s.value
            elif s.name == "govshare_consumer_lag" and s.labels.get("service") == service:
                source = s.labels.get("source", "")
                lag[source] = lag.get(source, 0.0) + s.value
    topics = sorted(set(published) | set(unpublished) | set(lag))
    return {t: TopicFigures(published.get(t, 0.0), unpublished.get(t, 0.0), lag.get(t, 0.0)) for t in topics}


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
