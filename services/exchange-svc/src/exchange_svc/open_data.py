"""Open data for the public (003 Art.25-27, 004 Art.20-23): the open resources' records, anonymous, counted per
address and minute across every replica, each item desensitised by its catalog rule (domain.open_data)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from govshare_common.db import UnitOfWork
from govshare_common.errors import AppError, NotFound, TooManyRequests

from exchange_svc.domain import open_data
from exchange_svc.domain.resources import HostedResource
from exchange_svc.guard import resource_from_row
from exchange_svc.sealing import Sealer


async def count_call(uow: UnitOfWork, address: str) -> None:
    """Count this call against the address's minute; a 429 with Retry-After past the limit."""
    now = uow.clock.now()
    start = open_data.window_start(now)
    await uow.execute(
        text("DELETE FROM open_data_window WHERE address = :a AND window_start < :w"), {"a": address, "w": start}
    )
    calls = (
        await uow.execute(
            text(
                "INSERT INTO open_data_window (address, window_start, calls) VALUES (:a, :w, 1) "
                "ON CONFLICT (address, window_start) DO UPDATE SET calls = open_data_window.calls + 1 "
                "RETURNING calls"
            ),
            {"a": address, "w": start},
        )
    ).scalar_one()
    if calls > open_data.CALLS_PER_MINUTE:
        wait = open_data.retry_after(now)
        raise TooManyRequests(
            f"开放数据每个地址每分钟最多访问 {open_data.CALLS_PER_MINUTE} 次，请稍后重试。",
            f"Open data allows {open_data.CALLS_PER_MINUTE} calls a minute per address; retry later.",
            headers={"Retry-After": str(max(1, round(wait)))},
            details={"retry_after_seconds": round(wait, 3), "limit_per_minute": open_data.CALLS_PER_MINUTE},
        )


def _closed(code: str) -> AppError:
    return NotFound(
        f"开放目录中没有信息资源 {code} 的数据。",
        f"The open catalog serves no data of resource {code}.",
        code="not_open_data",
        details={"resource": code},
    )


async def open_resource(uow: UnitOfWork, code: str, *, open_data_on: bool) -> HostedResource:
    """The published resource open to the public, or a 404 (also where the profile opens no data)."""
    if not open_data_on:
        raise NotFound(
            "本辖区未开展公共数据开放。",
            "This jurisdiction does not open data to the public.",
            code="open_data_off",
        )
    row = (
        await uow.execute(text("SELECT * FROM resource WHERE code = :c AND status = 'published'"), {"c": code})
    ).one_or_none()
    if row is None or not row.open_to_public:
        raise _closed(code)
    return resource_from_row(row)


async def records_page(
    uow: UnitOfWork, sealer: Sealer, resource: HostedResource, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the resource's records as the public sees them, in stored key order, and the total."""
    seal = sealer.for_resource(resource)
    total = (
        await uow.execute(text("SELECT count(*) FROM record WHERE resource_code = :c"), {"c": resource.code})
    ).scalar_one()
    rows = await uow.execute(
        text("SELECT data FROM record WHERE resource_code = :c ORDER BY record_key LIMIT :limit OFFSET :offset"),
        {"c": resource.code, "limit": limit, "offset": offset},
    )
    return [open_data.public_row(seal.open(r.data), resource) for r in rows], int(total)
