"""Open data for the public: the open resources' records, anonymous (the gateway lets /api/v1/exchange/open
through without a token), JSON or CSV, rate-limited per address."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from govshare_common.service import UoW

from exchange_svc import open_data
from exchange_svc.domain.open_data import open_items
from exchange_svc.routes.common import PREFIX, Offset, Sealing, page

router = APIRouter(tags=["open data"])


def _address(request: Request) -> str:
    """The caller's address: the peer, or the one the gateway in front of this service saw."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in request.app.state.settings.trusted_proxies:
        return forwarded.split(",")[-1].strip()
    return peer


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: spreadsheet programs read it as UTF-8


@router.get(f"{PREFIX}/open/{{code:path}}/records", summary="开放数据：向社会开放的信息资源数据（无需登录，已脱敏）")
async def open_records(
    request: Request,
    uow: UoW,
    code: str,
    sealer: Sealing,
    format: Annotated[Literal["json", "csv"], Query(description="json 或 csv")] = "json",
    limit: Annotated[int, Query(ge=1, le=1000, description="每页条数")] = 100,
    offset: Offset = 0,
) -> Any:
    profile = request.app.state.profile
    await open_data.count_call(uow, _address(request))
    resource = await open_data.open_resource(uow, code, open_data_on=profile.open_data)
    rows, total = await open_data.records_page(uow, sealer, resource, limit=limit, offset=offset)
    if format == "csv":
        filename = code.replace("/", "-")
        return Response(
            _csv(open_items(resource), rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"', "X-Total-Count": str(total)},
        )
    return page(rows, total, limit, offset, resource={"code": resource.code, "name": resource.name})
