"""What text the platform accepts from a caller: valid UTF-8 without NUL characters, JSON of bounded depth
with finite numbers.

PostgreSQL stores neither a NUL character in text nor a lone UTF-16 surrogate (what `"\\ud800"` in JSON
decodes to), and refuses `\\u0000` inside jsonb; letting such a value reach a query turns a caller's typo into
a 500. Pure: the request guard (input_guard.py) applies these to every query, path, form and JSON body, and
exchange-svc to every value of an ingested row.

What was refused must still be recorded as it came (the gateway's access record of a request with `%00` in
its path): `printable` keeps every character but these and control characters, which it writes as `%XX`
escapes of their bytes, so the record stores and reads back what the caller sent.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# No request body of the platform nests deeper than a few levels; a deeply nested one is an attack on the
# parser (Python's json raises RecursionError near 1000 levels).
MAX_JSON_DEPTH = 32

NUL = "nul_character"
INVALID_UTF8 = "invalid_utf8"
TOO_DEEP = "too_deeply_nested"
NOT_FINITE = "not_a_finite_number"

MESSAGES = {
    NUL: ("含有空字符（NUL，\\u0000），请删除后重试", "contains a NUL character (\\u0000); remove it"),
    INVALID_UTF8: ("不是合法的 UTF-8 文本", "is not valid UTF-8 text"),
    TOO_DEEP: (f"嵌套超过 {MAX_JSON_DEPTH} 层", f"is nested deeper than {MAX_JSON_DEPTH} levels"),
    NOT_FINITE: ("不是有限的数值（NaN 或 Infinity）", "is not a finite number (NaN or Infinity)"),
}


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return NUL
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return INVALID_UTF8
    return None


def bytes_problem(raw: bytes) -> str | None:
    """Why these received bytes are not acceptable text, or None."""
    try:
        return text_problem(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return INVALID_UTF8


def json_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH, text: bool = True) -> tuple[str, str] | None:
    """The first (dotted path, problem) in a decoded JSON value, keys included, or None; `text=False` looks
    at depth and numbers only. Iterative, so a deep value cannot exhaust the stack here; a path is spelled
    out only for the node it reports."""
    # (node, depth, parent entry, key): the parent chain spells the path.
    stack: list[tuple[Any, int, Any, Any]] = [(value, 0, None, None)]
    while stack:
        entry = stack.pop()
        node, depth = entry[0], entry[1]
        if isinstance(node, str):
            problem = text_problem(node) if text else None
            if problem:
                return _path(entry), problem
        elif isinstance(node, float):
            if not math.isfinite(node):
                return _path(entry), NOT_FINITE
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                return _path(entry), TOO_DEEP
            for key, child in node.items() if isinstance(node, dict) else enumerate(node):
                if text and isinstance(key, str):
                    problem = text_problem(key)
                    if problem:
                        return _path((None, 0, entry, key)), problem
                if text or not isinstance(child, str | int):
                    stack.append((child, depth + 1, entry, key))
    return None


def _path(entry: tuple[Any, int, Any, Any]) -> str:
    keys = []
    while entry[2] is not None:
        keys.append(str(entry[3]))
        entry = entry[2]
    return ".".join(reversed(keys)) or "body"


# In JSON text a NUL or a lone surrogate can only arrive as an escape (raw control characters and bytes that
# are not UTF-8 do not parse); an escaped backslash before "u0000" also matches, which only costs a full look.
SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def json_text_problem(body: bytes) -> tuple[str, str] | None:
    """What json_problem finds in a JSON body, found cheaply: the full walk only where the bytes say it can
    find something. Raises ValueError (RecursionError included) when the body is not JSON."""
    non_finite = False

    def constant(name: str) -> float:
        nonlocal non_finite
        non_finite = True
        return float(name)

    def number(literal: str) -> float:  # 1e400 is a literal too, and overflows to infinity
        nonlocal non_finite
        parsed = float(literal)
        non_finite = non_finite or not math.isfinite(parsed)
        return parsed

    value = json.loads(body, parse_constant=constant, parse_float=number)
    if non_finite or json.detect_encoding(body) != "utf-8" or SUSPECT_ESCAPE.search(body):
        return json_problem(value)
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:  # fewer containers than that cannot nest deeper
        return json_problem(value, text=False)
    return None


def describe(field: str, problem: str, *, field_en: str | None = None) -> tuple[str, str]:
    """zh-CN and English sentences naming the field and what is wrong with it."""
    zh, en = MESSAGES[problem]
    return f"{field} {zh}。", f"{field_en or field} {en}."


# What the access record keeps of text from outside: control characters, NUL and undecodable bytes escaped.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"%{code - 0xDC00:02X}"
    if code >= 0xD800:
        return f"%u{code:04X}"
    return f"%{code:02X}"


def printable(value: str) -> str:
    return _UNSAFE.sub(_escape, value) if _UNSAFE.search(value) else value
