"""The built single-page console (services/console/web/dist, made by `make console`) and how its files are
answered: hashed assets cached for good, the page itself never, every answer with the security headers."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi.responses import FileResponse, HTMLResponse, Response

from console.domain import SECURITY_HEADERS, asset_path

DIST = Path(__file__).resolve().parents[2] / "web" / "dist"

NOT_BUILT = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>管理控制台尚未构建</title></head>
<body><h1>管理控制台尚未构建</h1><p>请在项目目录运行 <code>make console</code>（或 <code>make run</code>，会自动构建）后刷新本页。</p>
</body></html>"""

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")


def serve(url_path: str, dist: Path = DIST) -> Response:
    index = dist / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503, headers=SECURITY_HEADERS)
    relative = asset_path(url_path)
    if relative is not None:
        file = dist / relative
        if file.is_file():
            immutable = relative.parts[0] == "assets"  # content-hashed names
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return FileResponse(file, headers={**SECURITY_HEADERS, "cache-control": cache})
        return HTMLResponse("<!doctype html><title>未找到</title><p>未找到该文件。</p>", 404, headers=SECURITY_HEADERS)
    return FileResponse(index, media_type="text/html", headers={**SECURITY_HEADERS, "cache-control": "no-cache"})
