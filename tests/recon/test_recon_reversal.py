"""A return of a clearing payment that an EARLIER statement already settled must reverse the
settlement in the ledger (``reverse_settlement``) in the same transaction as its RETURN exception.
Before the fix the return was only reported: the voucher stayed settled, the holder unpaid."""

from __future__ import annotations

from datetime import timedelta

from recon_world import DUE, ClearingWorld, entry, statement
from sqlalchemy import select

from ledger.canonical import PaymentStatus
from ledger.models import InstructionRow, VoucherRow
from ledger.recon.model import EXC_RETURN
from ledger.recon.models import ExceptionRow
from ledger.recon.service import record_payment_statuses, run_statement


def _pay_all(w: ClearingWorld) -> None:
    st = statement([entry(i.amount_minor, end_to_end_id=i.end_to_end_id) for i in w.instructions])
    with w.ledger.session() as s:
        r = run_statement(s, st, ledger=w.ledger)
    assert r.settled_instructions == len(w.instructions)


def _rows(w: ClearingWorld, iid: str, vno: str) -> tuple[str, str, str | None]:
    with w.ledger.session() as s:
        ins = s.get(InstructionRow, iid)
        v = s.get(VoucherRow, vno)
        assert ins is not None and v is not None
        return ins.status, v.state, ins.return_reason


def _journal_len(w: ClearingWorld) -> int:
    with w.ledger.engine.connect() as c:
        return int(c.exec_driver_sql("SELECT COUNT(*) FROM ledger_journal").scalar_one())


def test_return_on_a_later_statement_reverses_the_settlement(world: ClearingWorld) -> None:
    _pay_all(world)
    v3 = world.by_amount(9999)                     # V3: one piece, now settled
    assert _rows(world, v3.instruction_id, "V3")[:2] == ("settled", "settled")
    back = DUE + timedelta(days=3)
    ret = statement([entry(9999, "CRDT", on=back, end_to_end_id=v3.end_to_end_id, return_reason="AC04")],
                    sid="STMT-2", to_date=back)
    with world.ledger.session() as s:
        r = run_statement(s, ret, ledger=world.ledger)
        exc = s.scalars(select(ExceptionRow).where(ExceptionRow.code == EXC_RETURN)).one()
        assert exc.item_id == v3.instruction_id and "REVERSED" in exc.detail, exc.detail
    assert r.exceptions_by_code == {EXC_RETURN: 1}
    status, vstate, reason = _rows(world, v3.instruction_id, "V3")
    # before the fix: ("settled", "settled") -- the holder shown paid although the money came back
    assert (status, vstate) == ("returned", "clearing")
    assert reason is not None and "AC04" in reason
    assert world.ledger.verify().ok
    # re-running the statement changes nothing (no second reversal)
    n = _journal_len(world)
    with world.ledger.session() as s:
        assert run_statement(s, ret, ledger=world.ledger).replayed
    assert _journal_len(world) == n
    # pay again under a new instruction; a later statement settles it
    new = world.ledger.apply_one({"cmd": "reinstruct", "key": "re-v3", "on": back.isoformat(),
                                  "instruction_id": v3.instruction_id})
    assert new.result == "ok", new.to_json()
    again = statement([entry(9999, on=back, end_to_end_id=new.data["end_to_end_id"])], sid="STMT-3",
                      to_date=back)
    with world.ledger.session() as s:
        assert run_statement(s, again, ledger=world.ledger).settled_instructions == 1
    assert _rows(world, new.data["instruction_id"], "V3")[:2] == ("settled", "settled")
    assert world.ledger.verify().ok


def test_partial_return_is_reported_as_refused_and_the_run_commits(world: ClearingWorld) -> None:
    _pay_all(world)
    v3 = world.by_amount(9999)
    back = DUE + timedelta(days=2)
    ret = statement([entry(9000, "CRDT", on=back, end_to_end_id=v3.end_to_end_id, return_reason="AC04")],
                    sid="STMT-2", to_date=back)
    with world.ledger.session() as s:
        r = run_statement(s, ret, ledger=world.ledger)
        detail = s.scalars(select(ExceptionRow.detail).where(ExceptionRow.code == EXC_RETURN)).one()
    assert r.exceptions_by_code == {EXC_RETURN: 1}
    assert "REFUSED" in detail and "amount_mismatch" in detail
    assert _rows(world, v3.instruction_id, "V3")[:2] == ("settled", "settled")
    assert world.ledger.verify().ok


def test_pain002_reject_after_booking_reverses_the_settlement(world: ClearingWorld) -> None:
    _pay_all(world)
    v2 = world.by_amount(25050)
    st = PaymentStatus(original_message_id="MSG-1", level="transaction", status="RJCT",
                       original_instruction_id=v2.instruction_id, reason_code="AC04")
    with world.ledger.session() as s:
        assert record_payment_statuses(s, [st], business_date=DUE + timedelta(days=1),
                                       ledger=world.ledger) == 1
        exc = s.scalars(select(ExceptionRow)).one()
        assert "REVERSED" in exc.detail and exc.amount_minor == 25050
    assert _rows(world, v2.instruction_id, v2.voucher_no)[0] == "returned"
    assert world.ledger.verify().ok
