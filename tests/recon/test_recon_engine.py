"""The matching engine alone: every pass, every exception kind, and its invariants (property test)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import StatementEntry, TransactionDetail
from ledger.recon.engine import match_statement
from ledger.recon.model import (
    EXC_AMBIGUOUS,
    EXC_AMOUNT_DIFF,
    EXC_CURRENCY,
    EXC_DUPLICATE,
    EXC_RETURN,
    EXC_UNMATCHED_EXPECTED,
    EXC_UNMATCHED_LINE,
    NEXT_ACTION,
    RULE_GROUP_LINES,
    RULE_GROUP_SUM,
    RULE_GROUP_VOUCHER,
    RULE_REF_BATCH,
    RULE_REF_E2E,
    RULE_REF_INSTR,
    RULE_REF_PIECE,
    RULE_REF_SERIAL,
    RULE_WINDOW,
    ExpectedItem,
    MatchConfig,
)

ACCT = "6222000000000001"
D = date(2026, 12, 15)


def item(item_id: str, minor: int, cd: str = "DBIT", *, due: date = D, ccy: str = "CNY",
         **kw: object) -> ExpectedItem:
    return ExpectedItem(item_id, "clearing", ACCT, ccy, cd, minor, due, **kw)  # type: ignore[arg-type]


def line(minor: int, cd: str = "DBIT", *, on: date = D, ccy: str = "CNY", **kw: object) -> StatementEntry:
    return StatementEntry(minor, ccy, cd, on, on, **kw)  # type: ignore[arg-type]


def rules(outcome: object) -> list[tuple[int, str, str]]:
    return sorted((m.line_index, m.item.item_id, m.rule) for m in outcome.matches)  # type: ignore[attr-defined]


def codes(outcome: object) -> list[tuple[str, int | None, str | None]]:
    return sorted(((x.code, x.line_index, x.item_id) for x in outcome.exceptions),  # type: ignore[attr-defined]
                  key=lambda t: (t[0], t[1] if t[1] is not None else -1, t[2] or ""))


# ---- pass 1 ---------------------------------------------------------------------------------

def test_pass1_strong_references_each_record_their_rule() -> None:
    items = [item("I1", 100, end_to_end_id="E1"), item("I2", 200), item("I3", 300, serial_no="SN3"),
             item("I4", 400, piece_no="V9-4")]
    lines = [line(100, end_to_end_id="E1"), line(200, instruction_id="I2"),
             line(300, mandate_or_serial="SN3"),
             line(400, remittance_info="clearing of piece V9-4 at maturity")]
    # the amounts are distinct but the window would also fit: pass 1 must win and say so
    out = match_statement(ACCT, lines, items)
    assert rules(out) == [(0, "I1", RULE_REF_E2E), (1, "I2", RULE_REF_INSTR), (2, "I3", RULE_REF_SERIAL),
                          (3, "I4", RULE_REF_PIECE)]
    assert out.exceptions == []


def test_pass1_reference_matches_even_outside_the_window() -> None:
    out = match_statement(ACCT, [line(100, on=D + timedelta(days=30), end_to_end_id="E1")],
                          [item("I1", 100, end_to_end_id="E1")])
    assert rules(out) == [(0, "I1", RULE_REF_E2E)]


# ---- pass 2 ---------------------------------------------------------------------------------

def test_pass2_amount_account_within_window() -> None:
    out = match_statement(ACCT, [line(500, on=D + timedelta(days=2))], [item("I1", 500)])
    assert rules(out) == [(0, "I1", RULE_WINDOW)]


def test_pass2_outside_window_is_not_matched() -> None:
    cfg = MatchConfig(window_before_days=1, window_after_days=1)
    out = match_statement(ACCT, [line(500, on=D + timedelta(days=2))], [item("I1", 500)], config=cfg,
                          as_of=D + timedelta(days=2))
    assert rules(out) == []
    assert codes(out) == [(EXC_UNMATCHED_EXPECTED, None, "I1"), (EXC_UNMATCHED_LINE, 0, None)]


def test_pass2_two_items_same_amount_is_ambiguous_never_a_guess() -> None:
    out = match_statement(ACCT, [line(500)], [item("I1", 500), item("I2", 500)])
    assert rules(out) == []
    assert codes(out) == [(EXC_AMBIGUOUS, 0, None)]
    assert {i.item_id for i in out.open_items} == {"I1", "I2"}


def test_pass2_two_lines_one_item_is_ambiguous() -> None:
    out = match_statement(ACCT, [line(500), line(500)], [item("I1", 500)])
    assert rules(out) == []
    assert codes(out) == [(EXC_AMBIGUOUS, 0, None), (EXC_AMBIGUOUS, 1, None)]


def test_pass2_direction_and_account_must_agree() -> None:
    other = ExpectedItem("X", "repayment", "9999", "CNY", "DBIT", 500, D)
    out = match_statement(ACCT, [line(500, "CRDT")], [item("I1", 500, "DBIT"), other])
    assert rules(out) == []
    assert codes(out) == [(EXC_UNMATCHED_LINE, 0, None)]


# ---- pass 3 ---------------------------------------------------------------------------------

def test_pass3_one_transfer_pays_a_whole_voucher() -> None:
    items = [item("P1", 30000, voucher_no="V1"), item("P2", 70000, voucher_no="V1"), item("Q", 100000)]
    out = match_statement(ACCT, [line(100000, remittance_info="V1 maturity")], items, as_of=D)
    # Q (1000.00, no voucher) fits the amount window too, but the line names V1: the reference
    # outranks the amount, so pass 2 leaves it to the voucher group of pass 3
    assert rules(out) == [(0, "P1", RULE_GROUP_VOUCHER), (0, "P2", RULE_GROUP_VOUCHER)]
    assert [i.item_id for i in out.open_items] == ["Q"]
    assert len({m.group for m in out.matches}) == 1


def test_pass3_obligor_day_sum_without_reference() -> None:
    items = [item("A", 100, obligor_uscc="O1"), item("B", 250, obligor_uscc="O1"),
             item("C", 999, obligor_uscc="O2")]
    out = match_statement(ACCT, [line(350)], items)
    assert rules(out) == [(0, "A", RULE_GROUP_SUM), (0, "B", RULE_GROUP_SUM)]


def test_pass3_group_cap_is_respected() -> None:
    items = [item(f"P{i}", 10, voucher_no="V1") for i in range(5)]
    out = match_statement(ACCT, [line(50, remittance_info="V1")], items,
                          config=MatchConfig(max_group_items=4))
    assert rules(out) == []
    assert codes(out) == [(EXC_UNMATCHED_LINE, 0, None)]


def test_pass3_payment_and_netted_fee_lines_settle_one_item() -> None:
    # expected net repayment 995.00 credit; the bank books gross 1000.00 credit and a 5.00 fee debit
    out = match_statement(ACCT, [line(100000, "CRDT", end_to_end_id="E1"),
                                 line(500, "DBIT", end_to_end_id="E1")],
                          [item("R1", 99500, "CRDT", end_to_end_id="E1")])
    assert rules(out) == [(0, "R1", RULE_GROUP_LINES), (1, "R1", RULE_GROUP_LINES)]


def test_pass3_two_groups_with_the_same_sum_are_ambiguous() -> None:
    items = [item("A", 100, obligor_uscc="O1"), item("B", 250, obligor_uscc="O1"),
             item("C", 150, obligor_uscc="O2"), item("D", 200, obligor_uscc="O2")]
    out = match_statement(ACCT, [line(350)], items)
    assert rules(out) == []
    assert codes(out) == [(EXC_AMBIGUOUS, 0, None)]


# ---- exceptions -----------------------------------------------------------------------------

def test_amount_difference_on_a_strong_reference() -> None:
    out = match_statement(ACCT, [line(99000, end_to_end_id="E1")], [item("I1", 100000, end_to_end_id="E1")])
    assert codes(out) == [(EXC_AMOUNT_DIFF, 0, "I1")]
    assert "difference 1000" in out.exceptions[0].detail
    assert out.matches == [] and out.open_items == []   # reported once, against its line


def test_duplicate_in_the_same_statement_and_against_earlier_statements() -> None:
    items = [item("I1", 100, end_to_end_id="E1")]
    out = match_statement(ACCT, [line(100, end_to_end_id="E1"), line(100, end_to_end_id="E1")], items)
    assert rules(out) == [(0, "I1", RULE_REF_E2E)]
    assert codes(out) == [(EXC_DUPLICATE, 1, "I1")]
    out = match_statement(ACCT, [line(100, end_to_end_id="E0")], [], prior_refs={"E0": "I0"})
    assert codes(out) == [(EXC_DUPLICATE, 0, "I0")]


def test_returns_are_exceptions_and_never_matches() -> None:
    items = [item("I1", 100, end_to_end_id="E1"), item("I2", 200, end_to_end_id="E2")]
    lines = [line(100, "CRDT", end_to_end_id="E1", return_reason="AC04"),
             line(200, end_to_end_id="E2", reversal=True),
             line(300, "CRDT", bank_tx_code="PMNT-ICDT-RRTN", end_to_end_id="E9")]
    out = match_statement(ACCT, lines, items, as_of=D)
    assert rules(out) == []
    assert codes(out) == [(EXC_RETURN, 0, "I1"), (EXC_RETURN, 1, "I2"), (EXC_RETURN, 2, None)]
    assert {i.item_id for i in out.open_items} == {"I1", "I2"}


def test_never_across_currencies() -> None:
    out = match_statement(ACCT, [line(100, ccy="USD", end_to_end_id="E1"), line(200, ccy="USD")],
                          [item("I1", 100, end_to_end_id="E1"), item("I2", 200)], as_of=D)
    assert rules(out) == []
    assert codes(out) == [(EXC_CURRENCY, 0, "I1"), (EXC_UNMATCHED_LINE, 1, None)]


def test_shared_reference_is_ambiguous() -> None:
    out = match_statement(ACCT, [line(100, end_to_end_id="E1")],
                          [item("I1", 100, end_to_end_id="E1"), item("I2", 100, end_to_end_id="E1")])
    assert codes(out) == [(EXC_AMBIGUOUS, 0, None)]


def test_unmatched_expected_only_after_its_window() -> None:
    items = [item("LATE", 100, due=D - timedelta(days=10)), item("SOON", 200, due=D)]
    out = match_statement(ACCT, [], items, as_of=D)
    assert codes(out) == [(EXC_UNMATCHED_EXPECTED, None, "LATE")]
    assert [i.item_id for i in out.open_items] == ["SOON"]


def test_every_code_has_a_next_action() -> None:
    for x in (EXC_AMBIGUOUS, EXC_AMOUNT_DIFF, EXC_CURRENCY, EXC_DUPLICATE, EXC_RETURN,
              EXC_UNMATCHED_EXPECTED, EXC_UNMATCHED_LINE):
        assert len(NEXT_ACTION[x]) > 20


# ---- invariants -----------------------------------------------------------------------------

_refs = st.sampled_from([None, "E1", "E2", "E3", "E4"])
_amounts = st.sampled_from([100, 200, 300, 500])
_ccy = st.sampled_from(["CNY", "USD"])
_cd = st.sampled_from(["CRDT", "DBIT"])
_day = st.integers(min_value=-6, max_value=6).map(lambda n: D + timedelta(days=n))

_items = st.lists(st.builds(
    lambda i, a, c, cd, d, e, v, o: ExpectedItem(f"I{i}", "clearing", ACCT, c, cd, a, d, end_to_end_id=e,
                                                voucher_no=v, obligor_uscc=o),
    st.integers(0, 30), _amounts, _ccy, _cd, _day, _refs, st.sampled_from([None, "V1", "V2"]),
    st.sampled_from([None, "O1"])), max_size=12, unique_by=lambda x: x.item_id)
_batches = st.sampled_from([(), (("E1", 100), ("E2", None)), (("E3", None), ("E4", None))])
_lines = st.lists(st.builds(
    lambda a, c, cd, d, e, rem, rev, instr, batch: StatementEntry(
        a, c, cd, d, d, end_to_end_id=e, remittance_info=rem, reversal=rev, instruction_id=instr,
        transactions=tuple(TransactionDetail(amt, None, None, end_to_end_id=ref) for ref, amt in batch)),
    st.sampled_from([100, 200, 300, 400, 500, 600, 800]), _ccy, _cd, _day, _refs,
    st.sampled_from([None, "V1", "V2 E3"]), st.booleans(), st.sampled_from([None, "I1", "I2", "I3"]),
    _batches), max_size=12)


@settings(max_examples=300, deadline=None)
@given(items=_items, lines=_lines, prior=st.dictionaries(st.sampled_from(["E1", "E9"]), st.just("OLD")))
def test_property_line_matched_once_item_once_same_currency(items: list[ExpectedItem],
                                                            lines: list[StatementEntry],
                                                            prior: dict[str, str]) -> None:
    out = match_statement(ACCT, lines, items, prior_refs=prior)
    by_line: dict[int, set[int]] = {}
    for m in out.matches:
        by_line.setdefault(m.line_index, set()).add(m.group)
        assert m.item.currency == lines[m.line_index].currency      # never across currencies
        assert not lines[m.line_index].reversal                      # a return is never a match
    assert all(len(g) == 1 for g in by_line.values())                # a line belongs to one match group
    item_groups: dict[str, set[int]] = {}
    for m in out.matches:
        item_groups.setdefault(m.item.item_id, set()).add(m.group)
    assert all(len(g) == 1 for g in item_groups.values())           # an item is matched once
    # every line has exactly one outcome: matched, or one exception
    exc_lines = [x.line_index for x in out.exceptions if x.line_index is not None]
    assert len(exc_lines) == len(set(exc_lines))
    assert set(exc_lines).isdisjoint(by_line)
    assert set(exc_lines) | set(by_line) == set(range(len(lines)))
    # each match group balances: the line amounts equal the item amounts (signed)
    groups: dict[int, list] = {}
    for m in out.matches:
        groups.setdefault(m.group, []).append(m)
    for ms in groups.values():
        line_total = sum(lines[i].signed_minor for i in {m.line_index for m in ms})
        item_total = sum(it.signed_minor for it in {m.item.item_id: m.item for m in ms}.values())
        assert line_total == item_total


def test_pass1_batch_booking_matches_every_end_to_end_id() -> None:
    items = [item("P1", 30000, end_to_end_id="E1"), item("P2", 70000, end_to_end_id="E2")]
    batch = line(100000, transactions=(TransactionDetail(30000, "CNY", "DBIT", end_to_end_id="E1"),
                                       TransactionDetail(None, None, None, end_to_end_id="E2")))
    out = match_statement(ACCT, [batch], items)
    assert rules(out) == [(0, "P1", RULE_REF_BATCH), (0, "P2", RULE_REF_BATCH)]
    short = line(99000, transactions=batch.transactions)
    out = match_statement(ACCT, [short], items, as_of=D)
    assert codes(out) == [(EXC_AMOUNT_DIFF, 0, "P1")]
