from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.money import AmountError, Money, to_decimal_text, to_minor


@pytest.mark.parametrize(
    ("text", "cur", "minor"),
    [("1000.00", "CNY", 100000), ("1000", "CNY", 100000), ("0.5", "CNY", 50), ("12", "JPY", 12),
     ("1.234", "KWD", 1234), (Decimal("3.10"), "CNY", 310), (7, "CNY", 700)],
)
def test_to_minor(text, cur, minor):
    assert to_minor(text, cur) == minor


@pytest.mark.parametrize(
    ("text", "cur", "code"),
    [("1.001", "CNY", "over_precise"), ("1.5", "JPY", "over_precise"), ("-1", "CNY", "negative_amount"),
     ("1e3", "CNY", "invalid_amount"), ("1,000.00", "CNY", "invalid_amount"), ("", "CNY", "invalid_amount"),
     ("NaN", "CNY", "invalid_amount"), ("1.00", "XXX", "unknown_currency"), (1.5, "CNY", "invalid_amount"),
     (Decimal("Infinity"), "CNY", "invalid_amount")],
)
def test_to_minor_rejects(text, cur, code):
    with pytest.raises(AmountError) as e:
        to_minor(text, cur)
    assert e.value.code == code


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["CNY", "JPY", "KWD"]))
def test_round_trip(minor, cur):
    assert to_minor(to_decimal_text(minor, cur), cur, allow_negative=True) == minor


def test_money_arithmetic_refuses_mixed_currencies():
    assert Money.parse("1.10", "CNY") + Money(5, "CNY") == Money(115, "CNY")
    with pytest.raises(AmountError):
        Money(1, "CNY") + Money(1, "USD")
    assert str(Money(-5, "CNY")) == "-0.05 CNY"
