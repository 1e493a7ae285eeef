"""What text the platform accepts from a caller: valid UTF-8 without NUL characters, JSON of bounded depth
with finite numbers.

PostgreSQL stores neither a NUL character in text nor a lone UTF-16 surrogate (what `"\\ud800"` in JSON
decodes to), and refuses `\\u0000` inside jsonb; letting such a value reach a query turns a caller's typo into
a 500. Pure: the request guard (input_guard.py) applies these to every query, path, form and JSON body, and
exchange-svc to every value of an ingested row.
"""

from __future__ import annotations

import math
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


def json_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """The first (dotted path, problem) in a decoded JSON value, keys included, or None. Iterative, so a deep
    value cannot exhaust the stack here."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                return path or "body", problem
        elif isinstance(node, float):
            if not math.isfinite(node):
                return path or "body", NOT_FINITE
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                return path or "body", TOO_DEEP
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    problem = text_problem(key)
                    if problem:
                        return child_path, problem
                stack.append((child, child_path, depth + 1))
    return None


def describe(field: str, problem: str, *, field_en: str | None = None) -> tuple[str, str]:
    """zh-CN and English sentences naming the field and what is wrong with it."""
    zh, en = MESSAGES[problem]
    return f"{field} {zh}。", f"{field_en or field} {en}."
