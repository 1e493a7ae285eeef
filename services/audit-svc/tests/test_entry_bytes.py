"""An entry's body bytes are the standard library's JSON whichever encoder writes them, so every entry already
in a log still hashes to its stored hash."""

from __future__ import annotations

import json
import math
import random
import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from audit_svc.chain import canonical_body

REFERENCE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
AT = datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=UTC)


def body(data: dict[str, Any]) -> bytes:
    return canonical_body(
        position=7,
        recorded_at=AT.isoformat(),
        source='gate"way\n',
        seq=2**40,
        event_id="e-1",
        type_="gateway.access",
        subject="客户端-7",
        time=AT,
        data=data,
    )


def reference(data: dict[str, Any]) -> bytes:
    doc = {
        "position": 7,
        "recorded_at": AT.isoformat(),
        "source": 'gate"way\n',
        "seq": 2**40,
        "id": "e-1",
        "type": "gateway.access",
        "subject": "客户端-7",
        "time": AT.isoformat(),
        "data": data,
    }
    return REFERENCE.encode(doc).encode()


def test_bodies_are_the_standard_encoders_bytes_for_every_kind_of_value() -> None:
    every_char = "".join(chr(c) for c in range(0x80)) + "\u2028\u2029\ud7ff\ue000\uffff\U0001f600中文"
    cases: list[dict[str, Any]] = [
        {"text": every_char, "nested": {"list": [1, True, None, {"x": -5, "y": [every_char]}], "empty": {}}},
        {"ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**70)]},
        {"floats": [0.0, -0.0, 3.2, 1e-4, 9.99e-5, 1e-5, 1e15, 1e16, 1.5e300, 5e-324, 123456789.125]},
        {"not_finite": [math.nan, math.inf, -math.inf]},
        {"odd_keys": {1: "int key", False: "bool key", None: "none key", 2.5: "float key"}},
        {"not_json": [AT, Decimal("1.10"), (1, 2)]},
        {"tuple": (1, "a"), "datetime": AT.date()},
    ]
    rng = random.Random(19)
    for _ in range(2_000):
        value = struct.unpack("d", rng.randbytes(8))[0]
        cases.append({"random_float": value, "scaled": rng.random() * 10 ** rng.randint(-9, 20), "n": rng.random()})
    for data in cases:
        assert body(data) == reference(data), data
