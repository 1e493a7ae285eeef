"""Text that came from outside, made safe to store and log as it is.

PostgreSQL text and jsonb refuse NUL, and a JSON encoder cannot write a lone surrogate (what undecodable bytes
become under `surrogateescape`); log lines must not be split by control characters. `printable` keeps every
other character and writes these as %XX escapes of their bytes, so what a caller sent can still be read back.
"""

from __future__ import annotations

import re

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
