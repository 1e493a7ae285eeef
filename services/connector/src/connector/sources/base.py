"""What every source is: prepare (returns the table's columns, for the mapping check), poll, close."""

from __future__ import annotations

import asyncio
from typing import Any

from connector.config import SourceSection


def split_table(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return (schema or None), name


class Source:
    cfg: SourceSection
    # Set when a poll has put changes in the spool before it returns (the push loop may start on them).
    spooled: asyncio.Event

    def __init__(self) -> None:
        self.spooled = asyncio.Event()

    async def prepare(self) -> list[str]:
        """Connect, set up what capture needs; returns the table's columns (for the mapping check)."""
        raise NotImplementedError

    async def poll(self) -> int:
        """Capture what is new into the spool; returns how many changes."""
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.cfg.kind, "table": self.cfg.table, "resource": self.cfg.resource}
