"""console: 运维控制台. For now one page: the platform's services and whether each is ready."""

from __future__ import annotations

import asyncio
import html
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from govshare_common.clock import Clock
from govshare_common.service import ServiceSpec, create_service_app
from govshare_common.settings import Settings

SERVICE_LABELS = {
    "gateway": "统一身份认证与访问网关",
    "catalog": "政务信息资源目录",
    "request": "共享申请与授权",
    "exchange": "数据交换",
    "audit": "审计与监督",
    "connector": "前置机",
    "console": "运维控制台",
}

router = APIRouter()


async def _readiness(http: httpx.AsyncClient, name: str, url: str) -> tuple[str, str, bool, str]:
    try:
        resp = await http.get(f"{url}/readyz")
        ready = resp.status_code == 200
        detail = "、".join(f"{k}: {v}" for k, v in resp.json().get("checks", {}).items())
    except httpx.HTTPError as exc:
        ready, detail = False, f"无法连接（{type(exc).__name__}）"
    return name, url, ready, detail


@router.get("/console/", response_class=HTMLResponse, include_in_schema=False)
async def status_page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    async with httpx.AsyncClient(timeout=2.0) as http:
        rows = await asyncio.gather(*(_readiness(http, n, u) for n, u in settings.service_urls.items()))
    body = "".join(
        f"<tr><td>{html.escape(SERVICE_LABELS.get(n, n))}</td><td><code>{html.escape(n)}</code></td>"
        f"<td class={'ok' if ok else 'bad'}>{'就绪' if ok else '未就绪'}</td><td>{html.escape(d)}</td></tr>"
        for n, _u, ok, d in rows
    )
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>govshare 运维控制台</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em 1em;text-align:left}}
.ok{{color:#1a7f37}}.bad{{color:#cf222e}}</style></head><body>
<h1>政务信息资源共享交换平台 · 运维控制台</h1>
<p>管辖区规则配置：<b>{html.escape(request.app.state.profile.display_name)}</b></p>
<h2>服务运行状态</h2>
<table><thead><tr><th>服务</th><th>代号</th><th>状态</th><th>检查项</th></tr></thead><tbody>{body}</tbody></table>
</body></html>"""
    return HTMLResponse(page)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="console",
        title="运维控制台",
        migrations_dir=Path(__file__).parent,
        routers=[router],
        uses_database=False,
        uses_broker=False,
    )
    return create_service_app(spec, settings, clock)
