"""The text rules every service applies to what a caller sends."""

from __future__ import annotations

import json

from govshare_common.text_input import (
    INVALID_UTF8,
    NOT_FINITE,
    NUL,
    TOO_DEEP,
    bytes_problem,
    json_problem,
    text_problem,
)


def test_ordinary_chinese_text_and_json_pass() -> None:
    assert text_problem("常州市钟楼区 No.1 — 数据") is None
    assert bytes_problem("公安局".encode()) is None
    assert json_problem({"name": "张三", "items": [{"n": 1, "x": 1.5, "ok": True, "none": None}]}) is None


def test_nul_surrogates_and_bytes_that_are_not_utf8_are_named() -> None:
    assert text_problem("a\x00b") == NUL
    assert text_problem(json.loads('"\\ud800"')) == INVALID_UTF8
    assert bytes_problem(b"\xff\xfe") == INVALID_UTF8
    assert bytes_problem(b"x\x00") == NUL


def test_json_problems_name_the_path_keys_included() -> None:
    assert json_problem({"a": [{"b": "x\x00"}]}) == ("a.0.b", NUL)
    assert json_problem({"k\x00": 1}) == ("k\x00", NUL)
    assert json_problem({"n": float("nan")}) == ("n", NOT_FINITE)
    assert json_problem(json.loads('{"v": ' + "[" * 40 + "]" * 40 + "}"))[1] == TOO_DEEP


def test_a_value_nested_far_deeper_than_the_stack_is_checked_without_recursion() -> None:
    deep: list = []
    node = deep
    for _ in range(100_000):
        child: list = []
        node.append(child)
        node = child
    found = json_problem(deep)
    assert found is not None and found[1] == TOO_DEEP and found[0].count(".") == 31


def test_the_quick_json_body_check_finds_what_the_full_walk_finds() -> None:
    from govshare_common.text_input import json_text_problem

    assert json_text_problem('{"a": ["x", {"b": "常州"}]}'.encode()) is None
    assert json_text_problem(b'{"a": "x\\u0000"}') == ("a", NUL)
    assert json_text_problem(b'{"a": "\\ud83d"}') == ("a", INVALID_UTF8)
    assert json_text_problem(b'{"a": "\\ud83d\\ude00"}') is None  # a proper pair is an emoji
    assert json_text_problem(b'{"a": NaN}') == ("a", NOT_FINITE)
    assert json_text_problem(b'{"a": [1.5, 1e400]}') == ("a.1", NOT_FINITE)
    assert json_text_problem(b'{"a": "\\\\u0000"}') is None  # a backslash, then the text u0000
    assert json_text_problem('{"a": "x\\u0000"}'.encode("utf-16")) == ("a", NUL)
    deep = b'{"v": ' + b"[" * 40 + b"]" * 40 + b"}"
    assert json_text_problem(deep) is not None and json_text_problem(deep)[1] == TOO_DEEP


def test_printable_keeps_what_a_caller_sent_readable_and_storable() -> None:
    from govshare_common.text_input import printable, text_problem

    assert printable("/api/v1/catalog/户籍") == "/api/v1/catalog/户籍"
    assert printable("/x\x00y\n") == "/x%00y%0A"
    assert printable("bad\udcffbyte") == "bad%FFbyte"  # surrogateescape of the byte 0xff
    assert printable("lone\ud800") == "lone%uD800"
    for sample in ("/x\x00y", "bad\udcffbyte", "lone\ud800", "tab\tand\x7f"):
        assert text_problem(printable(sample)) is None
