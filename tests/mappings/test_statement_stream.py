"""The streaming statement API: lazy readers, draining, sequence continuity across pages and files."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from ledger.canonical import Statement, StatementEntry
from mappings.camt import render_camt053
from mappings.errors import FieldError, SequenceGap, SequenceRepeat
from mappings.mt940 import render_mt940
from mappings.statements import detect_format, iter_statements, parse_statements

SAMPLES = Path(__file__).resolve().parent / "samples"


def _stmt(seq: int, page: int | None = None, account: str = "ACC-1") -> Statement:
    e = StatementEntry(amount_minor=100, currency="CNY", credit_debit="CRDT", booking_date=date(2026, 12, 1),
                       value_date=date(2026, 12, 1), remittance_info="x")
    return Statement("mt940", f"S{seq}", account, "CNY", seq, None, date(2026, 12, 1), date(2026, 12, 1),
                     1000, 1100, (e,), page=page)


def test_unread_entries_are_drained_before_the_next_statement() -> None:
    data = (SAMPLES / "camt" / "camt053_v02_two_statements.xml").read_bytes()
    readers = iter_statements(data, source="two.xml")
    first = next(readers)
    assert first.header.statement_id == "BOC-41"
    second = next(readers)  # first one's entries were never read: drained (and checked) on the way
    assert first.statement is not None and first.statement.closing_balance_minor == 74999
    assert second.header.statement_id == "BOC-42"
    assert list(second) == []
    assert list(readers) == []


def test_continuation_pages_pass_gaps_and_repeats_do_not() -> None:
    last: dict[str, int] = {"ACC-1": 6}
    text = render_mt940([_stmt(7, 1), _stmt(7, 2), _stmt(8)])
    assert len(parse_statements(text.encode(), source="p.sta", last_sequences=last)) == 3
    assert last == {"ACC-1": 8}
    with pytest.raises(SequenceRepeat):
        parse_statements(render_mt940([_stmt(8)]).encode(), source="r.sta", last_sequences=last)
    with pytest.raises(SequenceGap) as info:
        parse_statements(render_mt940([_stmt(10)]).encode(), source="g.sta", last_sequences=last)
    assert "missing 9..9" in str(info.value) and info.value.line == 2
    other = {"ACC-2": 1}
    assert parse_statements(render_mt940([_stmt(5)]).encode(), source="o.sta", last_sequences=other)
    assert other == {"ACC-2": 1, "ACC-1": 5}, "an account seen for the first time starts its sequence"


def test_missing_sequence_is_an_error_once_the_account_has_one() -> None:
    st = dataclasses.replace(_stmt(1), sequence=None)
    data = render_camt053(st)
    with pytest.raises(FieldError) as info:
        parse_statements(data, source="n.xml", last_sequences={"ACC-1": 3})
    assert info.value.field == "sequence"
    assert parse_statements(data, source="n.xml", last_sequences={})[0].sequence is None


def test_header_problem_raises_before_the_first_entry_when_checking() -> None:
    data = (Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "camt" /
            "camt053.v8.xml").read_bytes()
    reader = next(iter_statements(data, source="v8.xml"))
    with pytest.raises(FieldError) as info:
        next(iter(reader))
    assert info.value.code == "currency_mismatch" and info.value.xpath is not None
    unchecked = next(iter_statements(data, source="v8.xml", verify=False)).collect()
    assert unchecked.entries[0].end_to_end_id == "MUELL/FINP/RA12345"


@pytest.mark.parametrize(("head", "fmt"), [
    (b'\xef\xbb\xbf<?xml version="1.0"?><Document/>', "camt"),
    ("<?xml version='1.0'?>".encode("utf-16"), "camt"),
    (b"{1:F01X}{2:O940}{4:\r\n:20:X\r\n:25:Y\r\n", "mt940"),
    (b"ABNANL2A\n940\nABNANL2A\n:20:ABN\n:25:1\n", "mt940"),
    (b":940:\n:20:X\n:25:Y\n", "mt940"),
    (b"booking_date,amount\n2026-01-01,1\n", None),
])
def test_detect_format(head: bytes, fmt: str | None) -> None:
    assert detect_format(head) == fmt


def test_collect_refuses_a_reader_that_was_partly_read() -> None:
    """collect() after a loop over some entries would return a statement missing them."""
    sample = Path(__file__).resolve().parent / "samples" / "camt" / "camt053_v08_cny_full.xml"
    reader = next(iter_statements(sample.read_bytes(), source=sample.name, verify=False))
    next(iter(reader))
    with pytest.raises(RuntimeError, match="already read"):
        reader.collect()
    fresh = next(iter_statements(sample.read_bytes(), source=sample.name, verify=False))
    assert fresh.collect().entries
