"""Reconciliation against a real ledger: persistence, settlement, idempotency, returns, PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from recon_world import DUE, OBLIGOR, OBLIGOR_ACCOUNT, ClearingWorld, build_world, entry, statement
from sqlalchemy import func, select

from ledger.canonical import PaymentStatus
from ledger.recon.model import (
    EXC_AMOUNT_DIFF,
    EXC_RETURN,
    EXC_UNMATCHED_EXPECTED,
    EXC_UNMATCHED_LINE,
    RULE_GROUP_VOUCHER,
    RULE_REF_E2E,
    RULE_REF_SERIAL,
    RULE_WINDOW,
    ExpectedItem,
)
from ledger.recon.models import ExceptionRow, ExpectedRow, LineRow, MatchRow, StatementRow
from ledger.recon.service import (
    ExpectedConflict,
    ReconError,
    StatementConflict,
    record_payment_statuses,
    register_expected,
    run_statement,
)


def _counts(w: ClearingWorld) -> dict[str, int]:
    with w.ledger.session() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) or 0
                for t in (StatementRow, LineRow, MatchRow, ExceptionRow)} | {
            "journal": len(list(w.ledger.journal(s)))}


def _day_statement(w: ClearingWorld, sid: str = "STMT-1"):
    a = w.by_amount(30000)      # V1-2 -> S2, paid with its EndToEndId; V2-1 (250.50) has no reference
    return statement([
        entry(30000, end_to_end_id=a.end_to_end_id),
        entry(25050, on=DUE + timedelta(days=1), remittance_info="货款"),
        entry(12345, "CRDT", remittance_info="unknown credit"),
    ], sid=sid, to_date=DUE + timedelta(days=1))


def test_run_settles_the_ledger_in_the_same_transaction(world: ClearingWorld) -> None:
    before = {i.instruction_id for i in world.ledger.open_instructions()}
    with world.ledger.session() as s:
        r = run_statement(s, _day_statement(world), ledger=world.ledger)
    assert (r.line_count, r.matched_lines, r.settled_instructions) == (3, 2, 2)
    assert r.matches_by_rule == {RULE_REF_E2E: 1, RULE_WINDOW: 1}
    assert r.exceptions_by_code == {EXC_UNMATCHED_LINE: 1}
    after = {i.instruction_id for i in world.ledger.open_instructions()}
    assert before - after == {world.by_amount(30000).instruction_id, world.by_amount(25050).instruction_id}
    assert world.ledger.verify().ok


def test_rerun_of_the_same_statement_changes_nothing(world: ClearingWorld) -> None:
    with world.ledger.session() as s:
        first = run_statement(s, _day_statement(world), ledger=world.ledger)
    snapshot = _counts(world)
    with world.ledger.session() as s:
        again = run_statement(s, _day_statement(world), ledger=world.ledger)
    assert again.replayed and not first.replayed
    assert (again.matched_lines, again.exception_count, again.settled_instructions) == (2, 1, 2)
    assert _counts(world) == snapshot


def test_same_identity_different_content_is_a_conflict(world: ClearingWorld) -> None:
    with world.ledger.session() as s:
        run_statement(s, _day_statement(world), ledger=world.ledger)
    changed = statement([entry(1, "CRDT")], sid="STMT-1", to_date=DUE + timedelta(days=1))
    with pytest.raises(StatementConflict, match="STMT-1"), world.ledger.session() as s:
        run_statement(s, changed, ledger=world.ledger)


def test_voucher_group_settles_every_piece_of_the_voucher(world: ClearingWorld) -> None:
    with world.ledger.session() as s:
        r = run_statement(s, statement([entry(100000, remittance_info="到期兑付 V1")]), ledger=world.ledger)
    assert r.matches_by_rule == {RULE_GROUP_VOUCHER: 2}
    assert r.settled_instructions == 2
    assert {i.voucher_no for i in world.ledger.open_instructions()} == {"V2", "V3"}


def test_amount_difference_leaves_the_instruction_open(world: ClearingWorld) -> None:
    ins = world.by_amount(9999)
    with world.ledger.session() as s:
        r = run_statement(s, statement([entry(9990, end_to_end_id=ins.end_to_end_id)]), ledger=world.ledger)
    assert r.exceptions_by_code == {EXC_AMOUNT_DIFF: 1}
    assert ins.instruction_id in {i.instruction_id for i in world.ledger.open_instructions()}


def test_return_line_marks_the_instruction_returned(world: ClearingWorld) -> None:
    ins = world.by_amount(9999)
    st = statement([entry(9999, "CRDT", end_to_end_id=ins.end_to_end_id, return_reason="AC04")])
    with world.ledger.session() as s:
        r = run_statement(s, st, ledger=world.ledger)
    assert r.exceptions_by_code == {EXC_RETURN: 1}
    status = {i.instruction_id: i.status for i in world.ledger.open_instructions()}
    assert status[ins.instruction_id] == "returned"


def test_overdue_item_is_reported_once_then_resolved_when_paid(world: ClearingWorld) -> None:
    late = DUE + timedelta(days=10)
    ins = world.by_amount(9999)
    with world.ledger.session() as s:
        r1 = run_statement(s, statement([], sid="S-A", to_date=late), ledger=world.ledger)
    with world.ledger.session() as s:
        r2 = run_statement(s, statement([], sid="S-B", to_date=late + timedelta(days=1)), ledger=world.ledger)
    assert r1.exceptions_by_code == {EXC_UNMATCHED_EXPECTED: 4}
    assert r2.exceptions_by_code == {}          # still overdue, but already reported
    with world.ledger.session() as s:
        run_statement(s, statement([entry(9999, on=late, end_to_end_id=ins.end_to_end_id)], sid="S-C",
                                   to_date=late + timedelta(days=2)), ledger=world.ledger)
        row = s.scalars(select(ExceptionRow).where(ExceptionRow.item_id == ins.instruction_id)).one()
        assert (row.status, row.resolved_on) == ("resolved", late + timedelta(days=2))


def test_registered_disbursement_matches_by_serial(world: ClearingWorld) -> None:
    disb = ExpectedItem("FIN-1", "disbursement", OBLIGOR_ACCOUNT, "CNY", "CRDT", 500000, DUE,
                        serial_no="BANK-SN-77", obligor_uscc=OBLIGOR)
    with world.ledger.session() as s:
        assert register_expected(s, [disb]) == 1
        assert register_expected(s, [disb]) == 0            # idempotent
    with pytest.raises(ExpectedConflict, match="amount_minor"), world.ledger.session() as s:
        register_expected(s, [ExpectedItem("FIN-1", "disbursement", OBLIGOR_ACCOUNT, "CNY", "CRDT", 1, DUE)])
    with world.ledger.session() as s:
        r = run_statement(s, statement([entry(500000, "CRDT", mandate_or_serial="BANK-SN-77")]),
                          ledger=world.ledger)
    assert r.matches_by_rule == {RULE_REF_SERIAL: 1}
    assert r.settled_instructions == 0


def test_matching_clearing_without_a_ledger_is_refused(world: ClearingWorld) -> None:
    from ledger.recon.service import item_from_instruction

    items = [item_from_instruction(v) for v in world.instructions]
    with pytest.raises(ReconError, match="no ledger"), world.ledger.session() as s:
        run_statement(s, statement([entry(9999, end_to_end_id=world.by_amount(9999).end_to_end_id)]),
                      items=items)
    assert _counts(world)["recon_statements"] == 0          # rolled back as a whole


def test_pain002_reject_is_a_return_exception_once() -> None:
    from sqlalchemy.orm import Session

    from ledger.db import make_engine, migrate

    eng = make_engine("sqlite://")
    migrate(eng)
    rej = PaymentStatus("transaction", "MSG-1", "RJCT", original_end_to_end_id="E-1", reason_code="AC04",
                        amount_minor=100, currency="CNY")
    with Session(eng) as s, s.begin():
        register_expected(s, [ExpectedItem("R-1", "repayment", "ACC", "CNY", "CRDT", 100, date(2026, 1, 5),
                                           end_to_end_id="E-1")])
        assert record_payment_statuses(s, [rej], business_date=date(2026, 1, 5)) == 1
        assert record_payment_statuses(s, [rej], business_date=date(2026, 1, 5)) == 0
        row = s.scalars(select(ExceptionRow)).one()
        assert (row.code, row.item_id, row.account) == (EXC_RETURN, "R-1", "ACC")
        assert s.scalar(select(func.count()).select_from(ExpectedRow)) == 1
    eng.dispose()


@pytest.mark.postgres
def test_postgresql_storage_settle_and_rerun(pg_url: str) -> None:
    w = build_world(pg_url)
    try:
        with w.ledger.session() as s:
            r = run_statement(s, _day_statement(w), ledger=w.ledger)
        assert (r.matched_lines, r.settled_instructions) == (2, 2)
        snapshot = _counts(w)
        with w.ledger.session() as s:
            assert run_statement(s, _day_statement(w), ledger=w.ledger).replayed
        assert _counts(w) == snapshot
        with w.ledger.session() as s:
            dates = set(s.scalars(select(MatchRow.value_date)))
        assert dates == {DUE, DUE + timedelta(days=1)}
        assert w.ledger.verify().ok
    finally:
        w.ledger.close()


def test_second_return_of_a_returned_instruction_is_reported_not_reapplied(world: ClearingWorld) -> None:
    ins = world.by_amount(9999)
    ret = entry(9999, "CRDT", end_to_end_id=ins.end_to_end_id, return_reason="AC04")
    with world.ledger.session() as s:
        run_statement(s, statement([ret], sid="R-1"), ledger=world.ledger)
    with world.ledger.session() as s:
        r = run_statement(s, statement([ret], sid="R-2", to_date=DUE + timedelta(days=1)),
                          ledger=world.ledger)
    assert r.exceptions_by_code == {EXC_RETURN: 1}
    status = {i.instruction_id: i.status for i in world.ledger.open_instructions()}
    assert status[ins.instruction_id] == "returned"


def test_a_failed_run_leaves_nothing_even_if_the_caller_commits(world: ClearingWorld) -> None:
    from ledger.recon.service import item_from_instruction

    items = [item_from_instruction(v) for v in world.instructions]
    bad = statement([entry(9999, end_to_end_id=world.by_amount(9999).end_to_end_id)], sid="BAD")
    with world.ledger.session() as s:
        with pytest.raises(ReconError, match="no ledger"):
            run_statement(s, bad, items=items)            # settling is impossible: no ledger given
        good = run_statement(s, _day_statement(world), ledger=world.ledger)   # same transaction goes on
    assert good.matched_lines == 2
    with world.ledger.session() as s:
        keys = set(s.scalars(select(StatementRow.statement_key)))
        assert keys == {f"{OBLIGOR_ACCOUNT}|STMT-1"}
        assert s.scalar(select(func.count()).select_from(MatchRow)) == 2


def test_duplicate_payment_across_statements(world: ClearingWorld) -> None:
    ins = world.by_amount(9999)
    pay = entry(9999, end_to_end_id=ins.end_to_end_id)
    with world.ledger.session() as s:
        assert run_statement(s, statement([pay], sid="D-1"), ledger=world.ledger).settled_instructions == 1
    with world.ledger.session() as s:
        r = run_statement(s, statement([pay], sid="D-2", to_date=DUE + timedelta(days=1)),
                          ledger=world.ledger)
        dup_item = s.scalars(select(ExceptionRow.item_id).where(ExceptionRow.code == "DUPLICATE")).one()
    assert r.exceptions_by_code == {"DUPLICATE": 1}
    assert dup_item == ins.instruction_id
