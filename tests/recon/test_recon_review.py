"""Defects found in the review of reconciliation, each pinned by a test that failed before its fix:
a payment debited and returned in the same statement must not settle the ledger, two return lines
for one instruction must not abort the run, and a line already reconciled in another statement
(same bank reference) must not match again."""

from __future__ import annotations

from datetime import timedelta

from recon_world import DUE, OBLIGOR_ACCOUNT, ClearingWorld, entry, statement
from sqlalchemy import select

from ledger.recon.model import EXC_DUPLICATE, EXC_RETURN, RULE_WINDOW, ExpectedItem
from ledger.recon.models import MatchRow
from ledger.recon.service import register_expected, run_statement


def _status(w: ClearingWorld, instruction_id: str) -> str | None:
    return {i.instruction_id: i.status for i in w.ledger.open_instructions()}.get(instruction_id)


def test_payment_returned_in_the_same_statement_does_not_settle(world: ClearingWorld) -> None:
    a = world.by_amount(30000)
    back = DUE + timedelta(days=1)
    st = statement([
        entry(30000, end_to_end_id=a.end_to_end_id),                                  # paid ...
        entry(30000, "CRDT", on=back, end_to_end_id=a.end_to_end_id, return_reason="AC04"),  # ... and back
    ], to_date=back)
    with world.ledger.session() as s:
        r = run_statement(s, st, ledger=world.ledger)
        assert a.instruction_id not in set(s.scalars(select(MatchRow.item_id)))
    # before the fix: the debit matched, the instruction was settled (holder recorded as paid, quota
    # released) although the money went back to the obligor
    assert r.settled_instructions == 0 and r.matched_lines == 0
    assert r.exceptions_by_code == {EXC_RETURN: 2}
    assert _status(world, a.instruction_id) == "returned"
    assert world.ledger.verify().ok


def test_two_return_lines_for_one_instruction_are_reported_not_fatal(world: ClearingWorld) -> None:
    a = world.by_amount(30000)
    st = statement([
        entry(30000, "CRDT", end_to_end_id=a.end_to_end_id, return_reason="AC04"),
        entry(30000, "CRDT", end_to_end_id=a.end_to_end_id, return_reason="AC04"),
    ])
    with world.ledger.session() as s:   # before the fix: ReconError, the second mark_returned refused
        r = run_statement(s, st, ledger=world.ledger)
    assert r.exceptions_by_code.get(EXC_RETURN) == 2
    assert _status(world, a.instruction_id) == "returned"
    assert world.ledger.verify().ok


def test_line_of_an_earlier_statement_does_not_match_again_under_another_statement_id(
    world: ClearingWorld,
) -> None:
    v3 = world.by_amount(9999)
    line = entry(9999, remittance_info="payment", account_servicer_ref="BR-0001")
    with world.ledger.session() as s:
        first = run_statement(s, statement([line], sid="053-DAY"), ledger=world.ledger)
    assert first.matches_by_rule == {RULE_WINDOW: 1} and _status(world, v3.instruction_id) is None
    # another expected debit of the same amount and window appears afterwards ...
    other = ExpectedItem("REPAY-1", "repayment", OBLIGOR_ACCOUNT, "CNY", "DBIT", 9999, DUE)
    with world.ledger.session() as s:
        register_expected(s, [other])
    # ... and the same day arrives again as another file (an MT940 beside the camt.053, a re-sent file)
    with world.ledger.session() as s:
        again = run_statement(s, statement([line], sid="940-DAY"), ledger=world.ledger)
        matched = set(s.scalars(select(MatchRow.item_id)))
    # before the fix: the line matched REPAY-1 by amount and window: one debit counted twice
    assert "REPAY-1" not in matched
    assert again.matched_lines == 0 and again.exceptions_by_code == {EXC_DUPLICATE: 1}
    assert world.ledger.verify().ok


def test_return_before_or_after_the_debit_never_leaves_a_match() -> None:
    from ledger.recon.engine import match_statement

    it = ExpectedItem("I1", "clearing", OBLIGOR_ACCOUNT, "CNY", "DBIT", 500, DUE, end_to_end_id="E1")
    paid = entry(500, end_to_end_id="E1")
    back = entry(500, "CRDT", end_to_end_id="E1", return_reason="AC04")
    for lines in ([paid, back], [back, paid]):
        out = match_statement(OBLIGOR_ACCOUNT, lines, [it], as_of=DUE)
        assert out.raw_matches == []
        assert sorted((x.code, x.line_index, x.item_id) for x in out.exceptions) == [
            (EXC_RETURN, 0, "I1"), (EXC_RETURN, 1, "I1")]
        assert [i.item_id for i in out.open_items] == ["I1"]
