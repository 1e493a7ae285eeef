"""PostgreSQL's built-in logical decoding output (pgoutput, protocol version 1), decoded into row changes.

What `pg_logical_slot_peek_binary_changes(..., 'proto_version', '1', 'publication_names', ...)` returns is one
message per row: Begin, Relation (a table's columns, sent before its first change in every decoding session),
Insert / Update / Delete with their tuples as text, Commit. Only what the connector needs is kept: the
table, the operation, the new values, the old key (for deletes and key changes), and the commit position.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class RowChange:
    table: str  # schema.name
    op: str  # insert | update | delete
    new: dict[str, Any] | None  # column -> text value (None for SQL NULL); absent: unchanged TOAST value
    old: dict[str, Any] | None  # the old key (or the whole old row with REPLICA IDENTITY FULL)


@dataclass
class Transaction:
    xid: int
    commit_lsn: int = 0  # the end of the commit record: the position the slot may advance to
    commit_time_us: int = 0  # microseconds since 2000-01-01
    changes: list[RowChange] = field(default_factory=list)


class DecodeError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> str:
        b = self.data[self.pos : self.pos + 1]
        self.pos += 1
        return b.decode("ascii")

    def int8(self) -> int:
        v = self.data[self.pos]
        self.pos += 1
        return v

    def int16(self) -> int:
        (v,) = struct.unpack_from("!h", self.data, self.pos)
        self.pos += 2
        return int(v)

    def int32(self) -> int:
        (v,) = struct.unpack_from("!i", self.data, self.pos)
        self.pos += 4
        return int(v)

    def int64(self) -> int:
        (v,) = struct.unpack_from("!q", self.data, self.pos)
        self.pos += 8
        return int(v)

    def string(self) -> str:
        end = self.data.index(b"\x00", self.pos)
        s = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return s

    def tuple(self, columns: tuple[str, ...]) -> dict[str, Any]:
        n = self.int16()
        out: dict[str, Any] = {}
        for i in range(n):
            kind = self.byte()
            name = columns[i] if i < len(columns) else f"col{i}"
            if kind == "n":
                out[name] = None
            elif kind == "u":
                continue  # unchanged TOASTed value: not sent, left as it was
            elif kind in ("t", "b"):
                length = self.int32()
                raw = self.data[self.pos : self.pos + length]
                self.pos += length
                out[name] = raw.decode("utf-8") if kind == "t" else raw
            else:
                raise DecodeError(f"unknown tuple column kind {kind!r}")
        return out


class Decoder:
    """Feeds pgoutput messages in order; yields each transaction once its Commit is read."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self._tx: Transaction | None = None

    def feed(self, message: bytes) -> Transaction | None:
        r = _Reader(message)
        kind = r.byte()
        if kind == "B":
            r.int64()  # final lsn
            ts = r.int64()
            self._tx = Transaction(xid=r.int32(), commit_time_us=ts)
            return None
        if kind == "C":
            r.int8()
            r.int64()  # commit lsn (start of the record)
            end = r.int64()
            ts = r.int64()
            tx = self._tx or Transaction(xid=0)
            tx.commit_lsn = end
            tx.commit_time_us = ts
            self._tx = None
            return tx
        if kind == "R":
            oid = r.int32()
            schema = r.string() or "public"
            name = r.string()
            r.int8()  # replica identity setting
            cols: list[str] = []
            keys: list[str] = []
            for _ in range(r.int16()):
                flags = r.int8()
                col = r.string()
                r.int32()
                r.int32()
                cols.append(col)
                if flags & 1:
                    keys.append(col)
            self.relations[oid] = Relation(oid, schema, name, tuple(cols), tuple(keys))
            return None
        if kind in ("I", "U", "D"):
            rel = self._relation(r.int32())
            old: dict[str, Any] | None = None
            new: dict[str, Any] | None = None
            marker = r.byte()
            if kind == "I":
                new = r.tuple(rel.columns)
            elif kind == "U":
                if marker in ("K", "O"):
                    old = r.tuple(rel.columns)
                    marker = r.byte()
                new = r.tuple(rel.columns)
            else:
                old = r.tuple(rel.columns)
            op = {"I": "insert", "U": "update", "D": "delete"}[kind]
            if self._tx is not None:
                self._tx.changes.append(RowChange(rel.qualified, op, new, old))
            return None
        # Type, Origin, Truncate, Message: nothing a row copy acts on (a TRUNCATE is caught by reconciliation).
        return None

    def _relation(self, oid: int) -> Relation:
        rel = self.relations.get(oid)
        if rel is None:
            raise DecodeError(f"change for relation {oid} before its Relation message")
        return rel


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> the 64-bit position."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
