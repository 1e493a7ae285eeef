"""How changes are cut into batches: never two changes of one record in a batch (so none is folded away), at
most the configured size, and an id the platform can recognise on a resend."""

from __future__ import annotations

from connector.domain.batching import BATCH_ID, Spooled, batch_id, cut, refused_rows, retry_id


def row(seq: int, key: str, op: str = "upsert") -> Spooled:
    return Spooled(seq, f"{seq:016X}.000000", op, key, {"GMSFHM": key})


def test_a_batch_stops_before_a_record_repeats_and_at_its_size() -> None:
    rows = [row(1, "a"), row(2, "b"), row(3, "a", "delete"), row(4, "c")]
    assert [r.seq for r in cut(rows, 100)] == [1, 2]
    assert [r.seq for r in cut(rows[2:], 100)] == [3, 4]
    assert [r.seq for r in cut(rows, 1)] == [1]


def test_batch_ids_are_the_same_for_the_same_positions_and_always_acceptable_to_the_platform() -> None:
    first = batch_id("hukou", "00000000016B3748.000001", "00000000016B3F00.000099")
    assert first == batch_id("hukou", "00000000016B3748.000001", "00000000016B3F00.000099")
    assert first != batch_id("hukou", "00000000016B3748.000001", "00000000016B3F00.000098")
    odd = batch_id("户籍/源", "w" + "9" * 60, "w" + "9" * 61)
    assert BATCH_ID.match(odd) and BATCH_ID.match(retry_id(odd, 3)) and retry_id(first, 1) != first


def test_the_refused_rows_are_read_from_the_platforms_answer() -> None:
    details = {
        "errors": [{"row": 3, "item": "GMSFHM", "code": "check_digit"}, {"row": None, "item": None}],
        "warnings": [{"row": 5, "item": "TYSHXYDM", "code": "uscc_check"}],
    }
    assert sorted(refused_rows(details)) == [3, 5]
    assert refused_rows("not a dict") == {}
