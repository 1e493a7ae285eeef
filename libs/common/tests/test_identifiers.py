import random
import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from govshare_common.identifiers import (
    InvalidIdentifier,
    UsccResult,
    hash_identifier,
    is_valid_uscc,
    mask_address,
    mask_name,
    mask_phone,
    mask_resident_id,
    resident_id_check_char,
    uscc_check_char,
    validate_resident_id,
    validate_uscc,
)

VALID_IDS = ["11010519491231002X", "440524188001010014"]
VALID_USCCS = ["91110000600037341L", "91350100M000100Y43"]
ALPHANUMERIC = string.digits + string.ascii_uppercase


def substitutions(value: str):
    """Every string that differs from value in exactly one character, drawn from 0-9 and A-Z."""
    for i, original in enumerate(value):
        for c in ALPHANUMERIC:
            if c != original:
                yield value[:i] + c + value[i + 1 :]


@pytest.mark.parametrize("value", VALID_IDS)
def test_valid_resident_ids(value):
    assert validate_resident_id(value) == value
    assert validate_resident_id(f"  {value.lower()} ") == value


@pytest.mark.parametrize("value", VALID_USCCS)
def test_valid_usccs(value):
    assert validate_uscc(value) == UsccResult(value, check_ok=True)
    assert is_valid_uscc(value.lower())


# Exhaustive rather than sampled: 18 positions x 35 replacements per example is small enough to prove it.
@pytest.mark.parametrize("value", VALID_IDS)
def test_every_single_substitution_of_a_resident_id_is_rejected(value):
    for wrong in substitutions(value):
        with pytest.raises(InvalidIdentifier):
            validate_resident_id(wrong)


@pytest.mark.parametrize("value", VALID_USCCS)
def test_every_single_substitution_of_a_uscc_is_rejected(value):
    for wrong in substitutions(value):
        try:
            assert not validate_uscc(wrong).check_ok, wrong
        except InvalidIdentifier:
            pass
        assert not is_valid_uscc(wrong)


# Area codes stdnum knows as valid for every year, so its place check cannot disagree for unrelated reasons.
AREAS = st.sampled_from(["110101", "110105", "110108", "310101"])


@st.composite
def resident_ids(draw):
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)))
    first17 = draw(AREAS) + born.strftime("%Y%m%d") + f"{draw(st.integers(0, 999)):03d}"
    return first17 + resident_id_check_char(first17)


@given(resident_ids())
def test_generated_resident_ids_are_valid_and_agree_with_stdnum(value):
    assert validate_resident_id(value) == value
    assert ric.is_valid(value)


@given(st.text(alphabet=string.digits, min_size=17, max_size=17))
def test_resident_id_check_char_agrees_with_stdnum(first17):
    assert resident_id_check_char(first17) == ric.calc_check_digit(first17 + "0")


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
def test_uscc_check_char_agrees_with_stdnum(first17):
    assert uscc_check_char(first17) == uscc.calc_check_digit(first17)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("11010519491231002", "length"),
        ("1101051949123100X2", "charset"),
        ("11010519491331002X", "birth_date"),  # month 13
        ("110105179912310023", "birth_date"),  # before 1800
        ("110105194912310021", "check_char"),
    ],
)
def test_resident_id_reasons(value, reason):
    with pytest.raises(InvalidIdentifier) as caught:
        validate_resident_id(value)
    assert caught.value.reason_code == reason
    assert caught.value.kind == "resident_id"
    assert value[6:14] not in str(caught.value)  # the birth date never reaches a log
    assert isinstance(caught.value, ValueError)


def test_future_birth_date_is_rejected():
    first17 = "11010520300101001"
    value = first17 + resident_id_check_char(first17)
    with pytest.raises(InvalidIdentifier) as caught:
        validate_resident_id(value, today=date(2026, 1, 1))
    assert caught.value.reason_code == "birth_date"
    assert validate_resident_id(value, today=date(2030, 1, 1)) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9111000060003734", "length"),
        ("91110000600037341I", "charset"),
        ("9111A000600037341L", "area_code"),
    ],
)
def test_uscc_format_errors(value, reason):
    with pytest.raises(InvalidIdentifier) as caught:
        validate_uscc(value)
    assert (caught.value.kind, caught.value.reason_code) == ("uscc", reason)


def test_uscc_wrong_check_is_a_warning_not_an_error():
    assert validate_uscc("91110000600037341M") == UsccResult("91110000600037341M", check_ok=False)
    assert not is_valid_uscc("91110000600037341M")


def test_masks():
    assert mask_resident_id("11010519491231002X") == "110105********002X"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("王") == "*"
    assert mask_phone("13800138000") == "138****8000"


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("北京市朝阳区建国路88号", "北京市朝阳区***"),
        ("江苏省常州市钟楼区南大街街道1号", "江苏省常州市钟楼区***"),
        ("湖北省襄阳市襄城区新街16号", "湖北省襄阳市襄城区***"),
        ("山东省泰安市肥城市新城街道龙山路1号", "山东省泰安市肥城市***"),  # county-level city
        ("海南省陵水黎族自治县椰林镇", "海南省陵水黎族自治县***"),
        ("海南省琼海市嘉积镇金海小区3栋", "海南省琼海市***"),  # 小区 is not a district
        ("广西壮族自治区南宁市青秀区民族大道", "广西壮族自治区南宁市青秀区***"),
        ("北京市市辖区东城区东华门街道", "北京市市辖区东城区***"),
        ("金海小区3栋", "***"),
        ("", ""),
    ],
)
def test_mask_address(address, masked):
    assert mask_address(address) == masked


def test_hash_identifier_is_keyed_and_normalised():
    key = b"k" * 32
    h = hash_identifier("11010519491231002X", key=key)
    assert len(h) == 64 and "11010519491231002X" not in h
    assert hash_identifier(" 11010519491231002x ", key=key) == h
    assert hash_identifier("11010519491231002X", key=b"other") != h
    with pytest.raises(ValueError):
        hash_identifier("11010519491231002X", key=b"")


def test_the_resident_id_check_character_is_iso_7064_mod_11_2_for_any_seventeen_digits() -> None:
    rng = random.Random(7064)
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # the standard's own definition of the weights
    for first17 in ["0" * 17, "9" * 17, *("".join(rng.choices("0123456789", k=17)) for _ in range(20_000))]:
        total = sum(int(c) * w for c, w in zip(first17, weights, strict=True))
        assert resident_id_check_char(first17) == "10X98765432"[total % 11], first17
