"""The batch-wide checks that make ingest fast must never let through what the row-by-row checks refuse, and
must store what they would store: the column check against RowChecker on many batches with one flaw each, the
JSON-lines reader's fast path against the standard library on the lines it must not take."""

from __future__ import annotations

import gc
import json
import random
from datetime import date
from typing import Any

import pytest
from exchange_helpers import LI, PEOPLE_ITEMS, WANG, ZHANG, item, resident_id

from govshare_common.identifiers import uscc_check_char

from exchange_svc.domain.resources import HostedResource, Item
from exchange_svc.domain.validation import RowChecker, check_columns
from exchange_svc.ingest import cycle_collection_paused
from exchange_svc.parsing import jsonl_rows

TODAY = date(2026, 12, 1)
ITEMS = [
    *PEOPLE_ITEMS,
    item("NL", "年龄", "I", 3),
    item("SR", "收入", "Y", 12),
    item("TYSHXYDM", "统一社会信用代码", "C", 18, identifier_kind="uscc"),
    item("SFHY", "是否婚育", "L"),
]
GOOD_USCC = "91320404MA1N00000" + uscc_check_char("91320404MA1N00000")


def _resource() -> HostedResource:
    return HostedResource(
        code="101001/000009",
        provider_code="P",
        name="people",
        resource_class="base",
        share_type="conditional",
        format_category="database",
        share_method_type="interface",
        update_cycle="daily",
        items=tuple(Item.from_catalog(i) for i in ITEMS),
        declared_key=None,
        status="published",
    )


def _people(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    while len(rows) < n:
        y, m, d = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
        gmsfhm = resident_id(f"{rng.randint(110000, 659999)}{y:04d}{m:02d}{d:02d}{rng.randint(0, 999):03d}")
        rows[gmsfhm] = {
            "GMSFHM": gmsfhm,
            "XM": rng.choice(["王伟", "李芳", "张娜"]),
            "LXDH": f"139{rng.randint(0, 99999999):08d}",
            "HJDZ": f"江苏省常州市钟楼区南大街{rng.randint(1, 999)}号",
            "CSRQ": f"{y:04d}-{m:02d}-{d:02d}",
            "MZ": "01",
            "NL": rng.randint(0, 120),
            "SR": f"{rng.randint(0, 10**6)}.{rng.randint(0, 99):02d}",
            "TYSHXYDM": GOOD_USCC,
            "SFHY": rng.choice([True, False, "是", "否"]),
        }
    return list(rows.values())


# One flaw each: refused values, values that need normalising, rows of another shape, repeated keys.
FLAWS: list[tuple[str, Any]] = [
    ("GMSFHM", ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")),  # wrong check character
    ("GMSFHM", "11010520491231002X"),  # born in the future
    ("GMSFHM", " " + LI),  # stripped, then valid
    ("GMSFHM", LI.lower()[:-1] + "x" if LI.endswith("X") else LI),
    ("XM", "名" * 51),  # too long
    ("XM", ""),  # a blank required item
    ("XM", "   "),
    ("XM", None),
    ("XM", 12345),  # a number for text: stored as text
    ("XM", ["王伟"]),
    ("LXDH", " 13900000000 "),
    ("CSRQ", "2020-02-30"),
    ("CSRQ", "2020-W01-1"),  # an ISO week date: a valid date, not in the form it was sent
    ("CSRQ", "20200101"),
    ("CSRQ", " 2020-01-01"),
    ("MZ", "011"),
    ("NL", "12"),
    ("NL", 1.5),
    ("NL", True),
    ("SR", "1.234"),
    ("TYSHXYDM", "91320404MA1N000000"),  # fails its check character: a warning to confirm
    ("TYSHXYDM", "91320404MA1N0000"),
    ("SFHY", "maybe"),
    ("UNKNOWN", "x"),
    ("_op", "delete"),
    ("_op", "DELETE"),
    ("_op", "merge"),
]


def _outcome(checker: RowChecker, numbered: list[tuple[int, dict[str, Any]]]) -> Any:
    rows, problems, warnings = [], [], []
    for number, raw in numbered:
        row, p, w = checker.check(number, raw)
        rows.append(row)
        problems.extend(p)
        warnings.extend(w)
    keys = [r.key for r in rows if r is not None]
    return rows, problems, warnings, len(set(keys)) != len(keys)


def test_the_column_check_takes_a_batch_only_when_row_by_row_checks_take_every_row_the_same_way() -> None:
    rng = random.Random(19)
    resource = _resource()
    checker = RowChecker(resource, full_row=True, today=TODAY)
    clean = _people(rng, 40)
    numbered = list(enumerate(clean, start=1))
    fast = check_columns([n for n, _ in numbered], clean, resource, full_row=True, today=TODAY)
    rows, problems, warnings, repeated = _outcome(checker, numbered)
    assert not problems and not warnings and not repeated
    assert fast == rows  # the same keys, subjects and normalised values, row for row

    taken = declined = 0
    cases = [*FLAWS, ("GMSFHM", clean[0]["GMSFHM"]), ("drop", "HJDZ"), ("drop", "XM"), ("drop", "GMSFHM")]
    for name, value in cases:
        for where in (0, 17, 39):
            batch = [dict(r) for r in clean]
            if name == "drop":
                del batch[where][value]
            elif name == "GMSFHM" and value == clean[0]["GMSFHM"]:
                batch[where if where else 1]["GMSFHM"] = value  # a repeated key
            else:
                batch[where][name] = value
            numbered = list(enumerate(batch, start=1))
            fast = check_columns([n for n, _ in numbered], batch, resource, full_row=True, today=TODAY)
            rows, problems, warnings, repeated = _outcome(checker, numbered)
            if fast is None:
                declined += 1
                continue
            taken += 1
            assert not problems and not warnings and not repeated, (name, value)
            assert fast == rows, (name, value)
    # Refused values, warnings and other shapes are all declined (asserted above); values that are only
    # normalised (a stripped ID number, a number sent as text) may be taken, and then come out the same.
    assert taken and declined


def test_a_contributing_department_without_required_items_is_checked_as_before() -> None:
    resource = _resource()
    rows = [{"GMSFHM": ZHANG, "LXDH": "13900000000"}, {"GMSFHM": WANG, "LXDH": "13900000001"}]
    fast = check_columns([1, 2], rows, resource, full_row=False, today=TODAY)
    expected = [
        RowChecker(resource, full_row=False, today=TODAY).check(n, r)[0] for n, r in ((1, rows[0]), (2, rows[1]))
    ]
    assert fast == expected
    # From the provider the same rows lack required items: not taken here, refused row by row.
    assert check_columns([1, 2], rows, resource, full_row=True, today=TODAY) is None
    assert RowChecker(resource, full_row=True, today=TODAY).check(1, rows[0])[1][0].code == "required"


async def _read(body: bytes) -> list[Any]:
    async def chunks() -> Any:
        for i in range(0, len(body), 7):  # small chunks: lines and characters cut across them
            yield body[i : i + 7]

    return [(n, r if isinstance(r, dict) else (r.code, r.item)) async for n, r in jsonl_rows(chunks())]


async def test_the_json_lines_reader_leaves_to_the_standard_library_what_orjson_would_read_differently() -> None:
    lines = [
        '{"NL": 123456789012345678901234567890}',  # past 64 bits: an integer, not a float
        '{"NL": -9223372036854775809}',
        '{"SR": 1.25}',
        '{"XM": NaN}',
        '{"SR": 1e999}',
        '{"XM": "a\\u0000b"}',
        '{"XM": "\\ud800"}',
        '{"XM": "王伟"}',
        "   ",
        '{"XM": "' + "[" * 3 + '"}',
        json.dumps({"XM": {"a": [[[[1]]]]}}),
        "[1, 2]",
        "not json",
        '\u3000{"XM": "李芳"}\u3000',
    ]
    body = "\ufeff".encode() + "\n".join(lines).encode() + b"\n" + b'{"XM": "\xff"}\n{"MZ": "01"}'
    got = await _read(body)
    assert got == [
        (1, {"NL": 123456789012345678901234567890}),
        (2, {"NL": -9223372036854775809}),
        (3, {"SR": 1.25}),
        (4, ("not_a_finite_number", "XM")),
        (5, ("not_a_finite_number", "SR")),
        (6, ("nul_character", "XM")),
        (7, ("invalid_utf8", "XM")),
        (8, {"XM": "王伟"}),
        (10, {"XM": "[[["}),
        (11, {"XM": {"a": [[[[1]]]]}}),
        (12, ("json", None)),
        (13, ("json", None)),
        (14, {"XM": "李芳"}),
        (15, {"XM": "\ufffd"}),  # a byte that is not UTF-8, replaced as the whole body's decoding did
        (16, {"MZ": "01"}),
    ]
    assert type(got[0][1]["NL"]) is int


def test_the_cycle_collector_resumes_when_the_last_batch_in_flight_is_done_even_a_failed_one() -> None:
    assert gc.isenabled()
    with cycle_collection_paused():
        assert not gc.isenabled()
        with pytest.raises(ValueError), cycle_collection_paused():  # a second batch, refused
            raise ValueError("bad batch")
        assert not gc.isenabled()  # the first batch is still at work
    assert gc.isenabled()
    gc.disable()  # a process that had turned it off keeps it off
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
