"""The treasury connector against the treasury sandbox: batches, asynchronous execution, pain.002."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.errors import NotFound, SoapFault, ValidationFailed
from connectors.soap import UsernameTokenConfig
from connectors.treasury import TreasuryClient, detect_pain001_format
from ledger.canonical import Party, PaymentInstruction
from mappings.pain001 import render_pain001
from mappings.pain002 import parse_pain002
from sandbox.treasury import RejectAccounts, start_treasury_sandbox

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
DEBTOR = Party(name="Obligor Co", account="6222000011112222", agent="102100099996")


class ManualClock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now


def instructions(n: int, tag: str = "A") -> list[PaymentInstruction]:
    return [
        PaymentInstruction(
            f"I{tag}{k}",
            f"E2E{tag}{k}",
            1_000_00 + k,
            "CNY",
            date(2026, 12, 1),
            DEBTOR,
            Party(name=f"Supplier {k}", account=f"62220000444400{k:02d}", agent="103100000026"),
        )
        for k in range(n)
    ]


def pain001(items: list[PaymentInstruction], version: str = "09") -> bytes:
    return render_pain001(
        items,
        version=version,
        initiating_party=Party(name="Obligor Co"),  # type: ignore[arg-type]
        created_at=T0,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def env(clock: ManualClock, tmp_path: Path):  # type: ignore[no-untyped-def]
    rule = RejectAccounts()
    sb = start_treasury_sandbox(
        password="pw", clock=clock, execution_delay=timedelta(minutes=30), reject_rule=rule, tick=None
    )
    n = itertools.count(1)
    c = TreasuryClient(
        endpoint=sb.url,
        username_token=UsernameTokenConfig("cvhub", "pw"),
        archive=Archive(tmp_path / "archive"),
        clock=clock,
        nonce=lambda: next(n).to_bytes(16, "big"),
    )
    yield sb, c, rule
    sb.stop()


def test_batch_pending_then_settled(env, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    sb, c, _ = env
    ack = c.submit_batch("PAY-001", pain001(instructions(3)))
    assert (ack.status, ack.duplicate) == ("ACTC", False)
    pending = parse_pain002(c.query_status("PAY-001"), source="PAY-001")
    assert [(s.level, s.status) for s in pending] == [("group", "PDNG")]
    assert sb.engine.executed() == []
    clock.now += timedelta(minutes=31)
    st = c.query_batch("PAY-001")
    assert st.status == "ACSC"
    statuses = parse_pain002(st.report, source="PAY-001")
    tx = [s for s in statuses if s.level == "transaction"]
    assert sorted(s.original_end_to_end_id or "" for s in tx) == ["E2EA0", "E2EA1", "E2EA2"]
    assert {s.status for s in tx} == {"ACSC"}
    paid = sb.engine.executed()
    assert sum(p.instruction.amount_minor for p in paid) == 3 * 1_000_00 + 3
    assert {p.value_date for p in paid} == {clock.now.date()}


def test_reject_rule_switches_transactions_to_rjct(env, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    sb, c, rule = env
    rule.closed_accounts.add("6222000044440001")
    c.submit_batch("PAY-002", pain001(instructions(2, "R")))
    clock.now += timedelta(hours=1)
    st = c.query_batch("PAY-002")
    assert st.status == "PART"
    by_e2e = {
        s.original_end_to_end_id: s for s in parse_pain002(st.report, source="x") if s.level == "transaction"
    }
    assert by_e2e["E2ER0"].status == "ACSC"
    assert (by_e2e["E2ER1"].status, by_e2e["E2ER1"].reason_code) == ("RJCT", "AC04")
    assert [p.instruction.end_to_end_id for p in sb.engine.executed()] == ["E2ER0"]  # only what settled


def test_pain001_version_03_and_format_detection(env, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    _, c, _ = env
    doc = pain001(instructions(1, "V"), version="03")
    assert detect_pain001_format(doc) == "pain.001.001.03"
    c.submit_batch("PAY-003", doc)
    clock.now += timedelta(hours=1)
    statuses = parse_pain002(c.query_status("PAY-003"), source="x")
    assert statuses[0].status == "ACSC"
    with pytest.raises(ValidationFailed):
        detect_pain001_format(b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'/>")


def test_invalid_document_and_duplicate_message_refused(env) -> None:  # type: ignore[no-untyped-def]
    sb, c, _ = env
    doc = pain001(instructions(1, "D"))
    broken = doc.replace(b"<CtrlSum>", b"<CtrlSumX>", 1).replace(b"</CtrlSum>", b"</CtrlSumX>", 1)
    with pytest.raises(SoapFault) as e:
        c.submit_batch("PAY-BAD", broken)
    assert e.value.code == "Client.InvalidDocument" and "INVALID_DOCUMENT" in (e.value.detail or "")
    c.submit_batch("PAY-004", doc)
    with pytest.raises(
        SoapFault
    ) as e2:  # the same pain.001 (same MsgId) under a new serial: no second payment
        c.submit_batch("PAY-005", doc)
    assert e2.value.code == "Client.DuplicateMessage"
    assert list(sb.engine.batches) == ["PAY-004"]


def test_unknown_serial_is_not_found(env) -> None:  # type: ignore[no-untyped-def]
    _, c, _ = env
    with pytest.raises(NotFound) as e:
        c.query_status("NOPE")
    assert (e.value.system, e.value.operation, e.value.ref) == ("treasury", "QueryBatchStatus", "NOPE")


def test_background_execution_with_real_clock(tmp_path: Path) -> None:
    with start_treasury_sandbox(password="pw", execution_delay=timedelta(seconds=0), tick=0.02) as sb:
        c = TreasuryClient(
            endpoint=sb.url,
            username_token=UsernameTokenConfig("cvhub", "pw"),
            archive=Archive(tmp_path / "a"),
        )
        c.submit_batch("PAY-RT", pain001(instructions(1, "T")))
        for _ in range(100):
            if sb.engine.batches["PAY-RT"].results:
                break
            import time

            time.sleep(0.02)
        assert sb.engine.batches["PAY-RT"].status == "ACSC"  # executed without anybody asking
