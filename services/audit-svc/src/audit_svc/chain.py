"""The hash chain, pure: how an event becomes an entry's bytes, how entries link, and how a walk checks them.

An entry's body is the JSON (compact, UTF-8) of the event together with its place in
the log (position and recorded_at). hash(n) = SHA-256(hash(n-1) || body(n)), with 32 zero bytes before the
first entry. The body carries its position, so removing an entry or renumbering the ones after it breaks the
chain at that place; altering a body breaks it at that entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

GENESIS = bytes(32)


# Key order is fixed by construction; the bytes are stored and hashed as written, never re-serialised.
# The reference encoding is the standard library's; orjson writes the same bytes for JSON's own types (same
# escapes, UTF-8 kept, compact) except floats below 1e-4 or from 1e16 up (repr writes an exponent there),
# NaN and infinities, so a document holding anything else takes the reference encoder.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_SAME_IN_BOTH = frozenset({str, int, bool, type(None)})


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _encoded_alike(value: Any) -> bool:
    """True when orjson writes `value` exactly as the reference encoder does (ints past 64 bits and keys that
    are not text make orjson raise, and then the reference encoder is used)."""
    kind = type(value)
    if kind in _SAME_IN_BOTH:
        return True
    if kind is float:
        return value == 0.0 or 1e-4 <= abs(value) < 1e16  # NaN compares false
    if kind is dict:
        for item in value.values():
            if type(item) not in _SAME_IN_BOTH and not _encoded_alike(item):
                return False
        return True
    if kind is list:
        for item in value:
            if type(item) not in _SAME_IN_BOTH and not _encoded_alike(item):
                return False
        return True
    return False


def encode_body(doc: dict[str, Any]) -> bytes:
    """The entry bytes of a document: the reference encoding, produced by orjson wherever that is the same."""
    if _encoded_alike(doc):
        try:
            return orjson.dumps(doc, default=_refuse, option=_ORJSON_OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            pass
    return reference_body(doc)


def reference_body(doc: dict[str, Any]) -> bytes:
    return _ENCODER.encode(doc).encode()


def canonical_body(
    *,
    position: int,
    recorded_at: str,
    source: str,
    seq: int,
    event_id: str,
    type_: str,
    subject: str,
    time: datetime,
    data: dict[str, Any],
) -> bytes:
    """recorded_at is given as ISO 8601 text (the same for a whole batch)."""
    doc = {
        "position": position,
        "recorded_at": recorded_at,
        "source": source,
        "seq": seq,
        "id": event_id,
        "type": type_,
        "subject": subject,
        "time": time.isoformat(),
        "data": data,
    }
    return encode_body(doc)


def link(prev_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev_hash + body).digest()


ProblemKind = Literal["altered", "removed", "checkpoint_mismatch"]


@dataclass(frozen=True)
class Problem:
    """The first place a walk found the log not as it was written."""

    position: int
    kind: ProblemKind
    detail: str


@dataclass
class Walk:
    """Checks entries in position order, chunk by chunk, against the chain and the signed checkpoints.

    `expected_prev` is the hash the first entry must follow: GENESIS, the stored hash of the entry before the
    range, or — after retention dropped the entries before — the entry's own prev_hash, which the next signed
    checkpoint then confirms (its hash commits to everything before it).
    """

    next_position: int
    expected_prev: bytes
    checkpoints: dict[int, bytes]  # position -> signed hash (signatures already verified)
    checked: int = 0
    checkpoints_matched: int = 0
    problem: Problem | None = None

    def feed(self, rows: Iterable[tuple[int, bytes, bytes]]) -> bool:
        """rows: (position, stored hash, body). False once a problem is found (the walk stops there)."""
        prev = self.expected_prev
        expect = self.next_position
        checkpoints = self.checkpoints
        sha = hashlib.sha256
        for position, stored, body in rows:
            if position != expect:
                if position < expect:
                    self.problem = Problem(position, "altered", f"entry {position} appears twice")
                elif position == expect + 1:
                    self.problem = Problem(expect, "removed", f"entry {expect} is missing")
                else:
                    self.problem = Problem(expect, "removed", f"entries {expect}..{position - 1} are missing")
                return False
            computed = sha(prev + body).digest()
            if computed != bytes(stored):
                self.problem = Problem(position, "altered", "content or chain link does not match its hash")
                return False
            signed = checkpoints.get(position)
            if signed is not None:
                if signed != computed:
                    self.problem = Problem(
                        position, "checkpoint_mismatch", "the chain up to here differs from the signed checkpoint"
                    )
                    return False
                self.checkpoints_matched += 1
            prev = computed
            expect += 1
            self.checked += 1
        self.expected_prev = prev
        self.next_position = expect
        return True

    def finish(self, last_position: int) -> None:
        """The range ended: entries up to last_position should all have been seen."""
        if self.problem is None and self.next_position <= last_position:
            missing = f"entries {self.next_position}..{last_position} are missing"
            self.problem = Problem(self.next_position, "removed", missing)
