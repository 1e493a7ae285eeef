"""Reading a batch body as it arrives: JSON lines or CSV, row by row, without holding the raw body; the rows of
each received piece are handed on together.

Rows are numbered from 1 in the order they come (a CSV header is not a row; a blank line is skipped but keeps
the JSON-lines numbering aligned with line numbers). A line that cannot be read becomes a row problem, so the
provider gets every bad row at once.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson

from govshare_common.text_input import SUSPECT_ESCAPE as _SUSPECT_ESCAPE
from govshare_common.text_input import TOO_DEEP, describe, json_problem

from exchange_svc.domain.validation import RowProblem

FORMATS = ("jsonl", "csv")


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[str]]:
    """Complete text lines per received chunk (UTF-8, a leading BOM dropped)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    tail = ""
    async for chunk in chunks:
        text = tail + decoder.decode(chunk)
        lines = text.split("\n")
        tail = lines.pop()
        if lines:
            yield lines
    text = tail + decoder.decode(b"", final=True)
    if text:
        yield [text]


async def _byte_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """Complete lines of bytes per received chunk (a leading UTF-8 BOM dropped). A newline byte never occurs
    inside a multi-byte UTF-8 character, so each line decodes on its own exactly as the whole body would."""
    tail = b""
    started = False
    async for chunk in chunks:
        data = tail + chunk
        if not started:
            if len(data) < len(codecs.BOM_UTF8) and codecs.BOM_UTF8.startswith(data):
                tail = data
                continue
            started = True
            data = data.removeprefix(codecs.BOM_UTF8)
        lines = data.split(b"\n")
        tail = lines.pop()
        if lines:
            yield lines
    if tail:
        yield [tail]


_SCALARS = (str, int, bool, type(None))


def _fast_row(line: bytes, *, unescaped: bool = False) -> dict[str, Any] | None:
    """The row a JSON line holds when it is a flat object of strings, integers, booleans and nulls without a
    NUL or a lone surrogate (what a batch almost always is), read by orjson; None when it needs the careful
    reading below (orjson turns integers past 64 bits into floats, refuses NaN; either way json decides).
    `unescaped`: the caller has seen that the line holds no such escape."""
    if not unescaped and _SUSPECT_ESCAPE.search(line):
        return None
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(row) is not dict:
        return None
    for value in row.values():
        if type(value) not in _SCALARS:
            return None
    return row


def _careful_row(number: int, line: str) -> dict[str, Any] | RowProblem | None:
    line = line.strip()
    if not line:
        return None
    try:
        row = json.loads(line)
    except RecursionError:
        return _text_problem(number, "", TOO_DEEP)
    except ValueError:
        return RowProblem(number, None, "json", "该行不是合法的 JSON", "the line is not valid JSON")
    if not isinstance(row, dict):
        return RowProblem(number, None, "json", "每行应为一个 JSON 对象", "each line must be a JSON object")
    found = json_problem(row)
    return _text_problem(number, *found) if found else row


async def jsonl_blocks(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[int, dict[str, Any] | RowProblem]]]:
    """The rows of each received piece together: one step of the stream per piece, not per row, and the
    escapes a line would need the careful reading for looked for once in the whole piece."""
    number = 0
    async for lines in _byte_lines(chunks):
        unescaped = _SUSPECT_ESCAPE.search(b"\n".join(lines)) is None
        block: list[tuple[int, dict[str, Any] | RowProblem]] = []
        for raw in lines:
            number += 1
            stripped = raw.strip()
            if not stripped:
                continue
            row: dict[str, Any] | RowProblem | None = _fast_row(stripped, unescaped=unescaped)
            if row is None:
                row = _careful_row(number, raw.decode("utf-8", errors="replace"))
                if row is None:
                    continue
            block.append((number, row))
        if block:
            yield block


def _text_problem(number: int, path: str, problem: str) -> RowProblem:
    """A row whose text the database cannot hold (NUL, a lone surrogate) or that nests too deep."""
    item = path.split(".", 1)[0] if path and path != "body" else None
    zh, en = (
        describe(f"数据项 {item}", problem, field_en=f"item {item}")
        if item
        else describe("该行", problem, field_en="the row")
    )
    return RowProblem(number, item, problem, zh.removesuffix("。"), en.removesuffix("."))


async def csv_blocks(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[int, dict[str, Any] | RowProblem]]]:
    """The rows of each received piece together (as `jsonl_blocks`)."""
    header: list[str] | None = None
    number = 0
    pending = ""  # a record whose quoted field runs on over a line break
    async for lines in _lines(chunks):
        records: list[str] = []
        for line in lines:
            pending = f"{pending}\n{line}" if pending else line
            if pending.count('"') % 2 == 0:
                records.append(pending.rstrip("\r"))
                pending = ""
        block: list[tuple[int, dict[str, Any] | RowProblem]] = []
        for fields in csv.reader(records):
            if header is None:
                header = [h.strip() for h in fields]
                continue
            if not any(f.strip() for f in fields):
                continue
            number += 1
            if len(fields) != len(header):
                block.append(
                    (
                        number,
                        RowProblem(
                            number,
                            None,
                            "columns",
                            f"该行有 {len(fields)} 列，表头有 {len(header)} 列",
                            f"the row has {len(fields)} columns, the header {len(header)}",
                        ),
                    )
                )
                continue
            row = dict(zip(header, fields, strict=True))
            found = json_problem(row)
            block.append((number, _text_problem(number, *found) if found else row))
        if block:
            yield block
    if pending:
        number += 1
        yield [(number, RowProblem(number, None, "csv", "引号未闭合", "an unterminated quoted field"))]


def blocks(fmt: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[int, dict[str, Any] | RowProblem]]]:
    return csv_blocks(chunks) if fmt == "csv" else jsonl_blocks(chunks)


async def jsonl_rows(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, dict[str, Any] | RowProblem]]:
    """The JSON-lines rows one at a time."""
    async for block in jsonl_blocks(chunks):
        for entry in block:
            yield entry
