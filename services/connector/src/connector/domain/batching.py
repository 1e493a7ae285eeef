"""How spooled changes become batches for the hosted library's ingest, and what each batch is called.

A batch holds at most `max_rows` changes and never two changes of one record: ingest refuses a repeated key
within a batch, and cutting there keeps every change (an insert, then its update, then its delete all arrive,
in order) rather than folding them into one. A batch's id is made from the source positions of its first and
last change, so a resend of the same batch after a crash or a lost answer is a no-op at the platform.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BATCH_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")


@dataclass(frozen=True)
class Spooled:
    seq: int
    position: str
    op: str  # upsert | delete
    record_key: str
    data: dict[str, Any]


def cut(rows: Sequence[Spooled], max_rows: int) -> list[Spooled]:
    """The longest prefix of `rows` (in source order) that makes one valid batch."""
    seen: set[str] = set()
    out: list[Spooled] = []
    for row in rows[:max_rows]:
        if row.record_key in seen:
            break
        seen.add(row.record_key)
        out.append(row)
    return out


def batch_id(source: str, first_position: str, last_position: str) -> str:
    raw = f"{source}.{first_position}-{last_position}"
    if BATCH_ID.match(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:40]
    safe = re.sub(r"[^A-Za-z0-9._\-]", "_", source)[:40]
    return f"{safe}.{digest}"


def retry_id(original: str, attempt: int) -> str:
    """The id of what remains of a batch once the rows the platform refused are set aside."""
    base = original if len(original) <= 90 else hashlib.sha256(original.encode()).hexdigest()[:40]
    return f"{base}.r{attempt}"


def ingest_line(row: Spooled) -> dict[str, Any]:
    if row.op == "delete":
        return {**row.data, "_op": "delete"}
    return dict(row.data)


def refused_rows(details: Any) -> dict[int, list[dict[str, Any]]]:
    """Row number (from 1) -> the platform's problems with it, from a refused batch's details."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not isinstance(details, dict):
        return out
    for problem in [*(details.get("errors") or []), *(details.get("warnings") or [])]:
        number = problem.get("row") if isinstance(problem, dict) else None
        if isinstance(number, int) and number >= 1:
            out.setdefault(number, []).append(problem)
    return out
