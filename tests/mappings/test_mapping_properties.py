"""Property tests: amount text <-> minor units, and write -> parse round trips of generated statements
(MT940, bank CSV profiles, camt.053) through cvhub's own writers and parsers."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import Party, Statement, StatementEntry
from ledger.money import CURRENCY_EXPONENT, AmountError, to_decimal_text, to_minor
from mappings.bank_csv import render_bank_csv
from mappings.camt import _fast_minor, render_camt053
from mappings.mt940 import render_mt940
from mappings.profiles import PROFILES
from mappings.statements import parse_statements

CURRENCIES = sorted(CURRENCY_EXPONENT)
TEXT = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=0x7F)
               .filter(lambda c: c.isascii()), min_size=1, max_size=16)
CN_TEXT = st.text(alphabet="电子债权凭证清分供应商有限公司 abcXYZ0123-/.", min_size=1, max_size=40) \
    .map(str.strip).filter(bool)


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(CURRENCIES))
def test_amount_format_parse_round_trip(minor: int, ccy: str) -> None:
    text = to_decimal_text(minor, ccy)
    assert to_minor(text, ccy, allow_negative=True) == minor
    if minor >= 0:
        assert _fast_minor(text, ccy) == minor


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(CURRENCIES), st.integers(1, 4))
def test_over_precise_amount_is_rejected(minor: int, ccy: str, extra: int) -> None:
    text = to_decimal_text(minor, ccy)
    text = (text if "." in text else text + ".") + "0" * (extra - 1) + "1"
    try:
        to_minor(text, ccy)
    except AmountError as e:
        assert e.code == "over_precise"
    else:
        raise AssertionError(f"{text} accepted for {ccy}")
    assert _fast_minor(text, ccy) is None


@given(st.text(max_size=12), st.sampled_from(CURRENCIES))
def test_fast_path_agrees_with_to_minor(text: str, ccy: str) -> None:
    fast = _fast_minor(text, ccy)
    if fast is not None:
        assert fast == to_minor(text, ccy)


@st.composite
def statements(draw: st.DrawFn, ccy: str = "CNY", *, cn: bool = False) -> Statement:
    n = draw(st.integers(0, 12))
    start = draw(st.dates(min_value=date(2001, 1, 1), max_value=date(2070, 12, 1)))
    entries = []
    for i in range(n):
        day = start + timedelta(days=draw(st.integers(0, 20)))
        entries.append(StatementEntry(
            amount_minor=draw(st.integers(1, 10**12)), currency=ccy,
            credit_debit=draw(st.sampled_from(["CRDT", "DBIT"])), booking_date=day, value_date=day,
            account_servicer_ref=draw(TEXT), entry_ref=draw(st.one_of(st.none(), TEXT)),
            remittance_info=draw(CN_TEXT if cn else TEXT), bank_tx_code="NTRF", line=None,
            counterparty=Party(name=draw(CN_TEXT) if cn else None) if cn else Party(),
            end_to_end_id=f"E2E-{i}" if cn else None))
    opening = draw(st.integers(-(10**12), 10**12))
    closing = opening + sum(e.signed_minor for e in entries)
    return Statement(source_format="generated", statement_id=draw(TEXT), account=draw(TEXT), currency=ccy,
                     sequence=draw(st.integers(1, 99999)), created_at=None, from_date=start,
                     to_date=max([e.booking_date for e in entries if e.booking_date], default=start),
                     opening_balance_minor=opening, closing_balance_minor=closing, entries=tuple(entries))


def _essentials(s: Statement) -> tuple[object, ...]:
    return (s.account, s.currency, s.opening_balance_minor, s.closing_balance_minor,
            tuple((e.amount_minor, e.credit_debit, e.booking_date, e.value_date, e.remittance_info,
                   e.counterparty.name, e.end_to_end_id) for e in s.entries))


@settings(max_examples=60, deadline=None)
@given(st.lists(statements(ccy="EUR"), min_size=1, max_size=3))
def test_mt940_round_trip(generated: list[Statement]) -> None:
    text = render_mt940(generated)
    back = parse_statements(text.encode("utf-8"), source="gen.sta")
    assert [_essentials(s) for s in back] == [_essentials(s) for s in generated]
    for b, g in zip(back, generated, strict=True):
        assert b.sequence == g.sequence
        assert [e.account_servicer_ref for e in b.entries] == [e.account_servicer_ref[:16] for e in g.entries]
        assert [e.entry_ref for e in b.entries] == [e.entry_ref for e in g.entries]


@settings(max_examples=60, deadline=None)
@given(statements(cn=True).filter(lambda s: len(s.entries) > 0),
       st.sampled_from(["csv-cn-bank", "csv-generic"]))
def test_bank_csv_round_trip(generated: Statement, profile_name: str) -> None:
    profile = PROFILES[profile_name]
    assert profile.csv is not None
    data = render_bank_csv(generated, profile.csv)
    (back,) = parse_statements(data, source="gen.csv", profile=profile_name)
    assert back.opening_balance_minor == generated.opening_balance_minor
    assert _essentials(back) == _essentials(dataclasses.replace(generated))


@settings(max_examples=40, deadline=None)
@given(st.lists(statements(cn=True), min_size=1, max_size=2), st.sampled_from(["02", "08"]))
def test_camt053_round_trip(generated: list[Statement], version: str) -> None:
    data = render_camt053(generated, version=version)  # type: ignore[arg-type]
    back = parse_statements(data, source="gen.xml")
    assert [_essentials(s) for s in back] == [_essentials(s) for s in generated]
    assert [s.sequence for s in back] == [s.sequence for s in generated]
