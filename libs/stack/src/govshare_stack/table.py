"""The one table `govshare up` and `govshare status` print, from a stack.json record, plus the footer that
says where to look. Column widths count CJK characters as two terminal cells."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

HEADERS = ("服务 service", "地址 url", "进程 pid", "状态 status")

READY = "就绪 ready"
NOT_READY = "未就绪 not ready"
DOWN = "已停止 down"
STARTING = "启动中 starting"
RUNNING = "运行中 running"
EXTERNAL = "外部 external"
UNREACHABLE = "不可达 unreachable"


def cell_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def render(rows: Sequence[Sequence[str]], headers: Sequence[str] = HEADERS) -> str:
    widths = [max(cell_width(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [str(c) + " " * (w - cell_width(str(c))) for c, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def rows_for(stack: Mapping[str, Any], statuses: Mapping[str, str]) -> list[list[str]]:
    """Rows for each service, then PostgreSQL, Kafka and the front door; `statuses` maps row name → status."""
    rows: list[list[str]] = []
    for name, svc in stack.get("services", {}).items():
        rows.append([name, svc["url"], str(svc.get("pid") or "-"), statuses.get(name, "?")])
    pg = stack.get("postgres", {})
    pg_label = "postgres (embedded)" if pg.get("embedded") else "postgres"
    rows.append([pg_label, pg.get("url", "?"), str(pg.get("pid") or "-"), statuses.get("postgres", "?")])
    kafka = stack.get("kafka", {})
    kafka_label = "kafka (tansu)" if kafka.get("embedded") else "kafka"
    rows.append(
        [
            kafka_label,
            kafka.get("bootstrap_servers", "?"),
            str(kafka.get("pid") or "-"),
            statuses.get("kafka", "?"),
        ]
    )
    door = stack.get("door")
    if door:
        where = door.get("url", "?") + (f" {door['tls_url']}" if door.get("tls_url") else "")
        rows.append(["nginx (door)", where, str(door.get("pid") or "-"), statuses.get("door", "?")])
    return rows


def footer(stack: Mapping[str, Any]) -> str:
    items = [
        ("网关 gateway", stack["gateway_url"]),
        ("控制台 console", stack["console_url"]),
        ("接口文档 API docs", stack["docs_url"]),
        ("日志 logs", stack["logs"]),
    ]
    if stack.get("demo_credentials"):
        items.append(("演示账号 demo credentials", stack["demo_credentials"]))
    width = max(cell_width(label) for label, _ in items)
    return "\n".join(f"{label}{' ' * (width - cell_width(label))}  {value}" for label, value in items)
