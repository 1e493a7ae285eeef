"""A source's column → data item mapping, checked against the catalog and the department's table.

A mapping that names a column the table lacks, or an item the resource lacks, is refused at start with a
message naming both sides, so the operator knows which line of connector.toml to change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MappingProblem:
    key: str  # the configuration key, e.g. sources[0].mapping.xm
    column: str
    item: str
    reason: str

    def message(self) -> str:
        return f"{self.key}: {self.reason} (column {self.column!r} → item {self.item!r})"


def check(
    *,
    key: str,
    mapping: Mapping[str, str],
    columns: Iterable[str],
    items: Iterable[str],
    resource: str,
    table: str,
) -> list[MappingProblem]:
    have_columns = {c.lower() for c in columns}
    have_items = set(items)
    problems: list[MappingProblem] = []
    for column, item in mapping.items():
        where = f"{key}.{column}"
        if column.lower() not in have_columns:
            problems.append(
                MappingProblem(
                    where,
                    column,
                    item,
                    f"the table {table} has no column {column!r} (it has: {', '.join(sorted(have_columns))})",
                )
            )
        if item not in have_items:
            problems.append(
                MappingProblem(
                    where,
                    column,
                    item,
                    f"the resource {resource} has no data item {item!r} (it has: {', '.join(sorted(have_items))})",
                )
            )
    return problems


def to_items(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """A department row as the resource's data items (text values as the database gave them)."""
    lowered = {k.lower(): v for k, v in row.items()}
    out: dict[str, Any] = {}
    for column, item in mapping.items():
        if column in row:
            out[item] = _plain(row[column])
        elif column.lower() in lowered:
            out[item] = _plain(lowered[column.lower()])
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)


def record_key(row: Mapping[str, Any], key_columns: Iterable[str]) -> str:
    lowered = {k.lower(): v for k, v in row.items()}
    return "|".join(str(row.get(c, lowered.get(c.lower()))) for c in key_columns)


def row_hash(items: Mapping[str, Any]) -> str:
    """What reconciliation compares: the mapped values, independent of column order."""
    return hashlib.sha256(json.dumps(items, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Difference:
    upserts: list[str]  # keys missing at the platform or with another value
    deletes: list[str]  # keys the platform holds that the source no longer has


def reconcile(source: Mapping[str, str], sent: Mapping[str, str]) -> Difference:
    """Keyed hashes of the source table against those of what was sent: what to send to make them equal."""
    upserts = sorted(k for k, h in source.items() if sent.get(k) != h)
    deletes = sorted(k for k in sent if k not in source)
    return Difference(upserts, deletes)
