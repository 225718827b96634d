"""The strict Chinese capital-amount parser, and the OCR decoder built on it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.contracts.capitals import CapitalAmountError, format_capital_amount, parse_capital_amount
from mappings.contracts.ocr_capitals import decode_ocr_capitals

GOOD = [
    ("零元整", 0),
    ("壹元整", 100),
    ("壹圆正", 100),
    ("壹万元", 1_000_000),
    ("拾万元整", 10_000_000),  # a leading 拾 stands for 壹拾
    ("壹仟零伍元整", 100_500),
    ("壹万零伍佰元整", 1_050_000),
    ("壹拾万柒仟元零伍角叁分", 10_700_053),  # zero at the 万 boundary may be omitted ...
    ("壹拾万零柒仟元伍角叁分", 10_700_053),  # ... or written
    ("壹仟陆佰捌拾元零叁角贰分", 168_032),  # 零 after 元 when the ones digit is zero
    ("壹仟陆佰捌拾元叁角贰分", 168_032),
    ("壹元零伍分", 105),
    ("伍角整", 50),
    ("伍角伍分", 55),
    ("壹亿零伍万元整", 10_005_000_000),
    ("壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分", 123_456_789),
    ("玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分", 99_999_999_999_999),
]

BAD = [
    ("", "empty"),
    ("壹仟伍元", "skipped digits need a 零"),  # colloquially 1500: ambiguous, refused
    ("壹仟零零伍元", "零 written twice"),
    ("壹元伍分", "needs 零"),
    ("壹元伍分整", "needs 零"),
    ("壹元贰角伍分整", "no 整 after 分"),
    ("壹佰零元整", "零 at the end"),
    ("零壹元", "零 at the start"),
    ("壹拾拾元", "without a digit"),
    ("壹佰壹仟元", "out of order"),
    ("壹万壹万元", "out of order"),
    ("贰叁元", "two digits"),
    ("壹仟零贰佰元", "no digit is skipped"),
    ("元整", "without an amount"),
    ("壹元零伍角", "ones digit is not zero"),
    ("壹万亿元", "out of order"),
    ("壹元元", "twice"),
    ("壹佰元整A", "not a capital-amount character"),
    ("壹佰", "no 元"),
]


@pytest.mark.parametrize(("text", "minor"), GOOD)
def test_parses_well_formed_amounts(text: str, minor: int) -> None:
    assert parse_capital_amount(text) == minor


@pytest.mark.parametrize(("text", "why"), BAD)
def test_refuses_malformed_amounts_saying_why(text: str, why: str) -> None:
    with pytest.raises(CapitalAmountError) as e:
        parse_capital_amount(text)
    assert why in str(e.value)
    assert e.value.code == "bad_capital_amount" and e.value.field == "amount_capitals"


@given(st.integers(min_value=0, max_value=10**14 - 1))
def test_format_then_parse_round_trips(minor: int) -> None:
    assert parse_capital_amount(format_capital_amount(minor)) == minor


def test_ocr_look_alikes_decode_only_when_one_amount_fits() -> None:
    # chi_sim has no 叁/柒/捌/仟 and prints 参/染/拥/什 for them
    assert decode_ocr_capitals("壹什参佰拥拾万零肆什伍佰肆拾陆元整") == (1_380_454_600, False)
    assert decode_ocr_capitals("肆佰伍拾元整") == (45_000, True)
    with pytest.raises(CapitalAmountError, match="no reading"):
        decode_ocr_capitals("壹什X佰元整")
    with pytest.raises(CapitalAmountError, match="grammar"):
        decode_ocr_capitals("什什元整")  # two units in a row fit no amount


def test_second_reading_fills_what_the_first_cannot_print() -> None:
    from mappings.contracts.ocr_capitals import decode_readings

    # chi_sim printed 码 (no reading) where chi_tra printed 貳; the merged reading decodes
    assert decode_readings("玖拾码万元整", ["玖拾貳萬元整"]) == (92_000_000, False)
    # traditional capitals from chi_tra alone
    assert decode_readings("码码元整", ["參仟元整"])[0] == 300_000
    # the two readings decode to different amounts: refused, not a guess
    with pytest.raises(CapitalAmountError, match="different amounts"):
        decode_readings("伍仟元整", ["陸仟元整"])
    with pytest.raises(CapitalAmountError, match="no reading"):
        decode_readings("码码元整", ["码码元整"])
