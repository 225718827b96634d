"""Bank A financing over SOAP against the bank A sandbox: decisions, disbursement, unknown outcome."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.bank_a import BankAFinancingClient, FinancingRequest
from connectors.errors import FatalError, NotFound, OutcomeUnknown, SoapFault
from connectors.soap import UsernameTokenConfig
from sandbox.bank_a import discount_interest, start_bank_a_sandbox

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PASSWORD = "bank-a-test-pw"


class ManualClock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now


def request(
    serial: str = "FIN-0001", piece: str = "V1-P1", amount_minor: int = 1_000_000_00, **kw
) -> FinancingRequest:  # type: ignore[no-untyped-def]
    base = FinancingRequest(
        serial=serial,
        voucher_id="V1",
        piece_id=piece,
        obligor_uscc="91310000MA1FL8L972",
        seller_uscc="91110108MA01ABCD1X",
        seller_name="Supplier Co",
        seller_account="6222000033334444",
        amount_minor=amount_minor,
        currency="CNY",
        annual_rate=Decimal("0.0385"),
        maturity_date=date(2027, 5, 29),
        registration_no="ZD20261130000001",
        recourse=False,
    )
    return replace(base, **kw)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def bank(clock: ManualClock, tmp_path: Path):  # type: ignore[no-untyped-def]
    sb = start_bank_a_sandbox(
        sftp_root=tmp_path / "bank_a",
        password=PASSWORD,
        clock=clock,
        decision_delay=timedelta(hours=1),
        disbursement_delay=timedelta(hours=2),
        tick=None,
    )
    yield sb
    sb.stop()


@pytest.fixture
def client(bank, clock: ManualClock, tmp_path: Path) -> BankAFinancingClient:  # type: ignore[no-untyped-def]
    n = itertools.count(1)
    return BankAFinancingClient(
        endpoint=bank.url,
        username_token=UsernameTokenConfig("cvhub", PASSWORD),
        archive=Archive(tmp_path / "archive"),
        clock=clock,
        read_timeout=0.5,
        nonce=lambda: next(n).to_bytes(16, "big"),
    )


def test_lifecycle_pending_approved_disbursed(bank, client: BankAFinancingClient, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    ack = client.submit_financing(request())
    assert (ack.status, ack.duplicate) == ("PENDING", False)
    assert client.query_financing("FIN-0001").status == "PENDING"
    clock.now += timedelta(hours=1)
    approved = client.query_financing("FIN-0001")
    assert approved.status == "APPROVED" and approved.decided_at is not None
    assert list(client.disbursement_notices()) == []
    clock.now += timedelta(hours=2)
    st = client.query_financing("FIN-0001")
    days = (date(2027, 5, 29) - date(2026, 11, 30)).days  # 180
    interest = 1_000_000_00 * Decimal("0.0385") * days / 360  # 19250.00 CNY
    assert st.status == "DISBURSED" and st.disbursement_date == date(2026, 11, 30)
    assert st.discount_interest_minor == int(interest) == 1_925_000
    assert st.disbursed_amount_minor == 1_000_000_00 - 1_925_000
    (notice,) = client.disbursement_notices()
    assert (notice.serial, notice.credit_account, notice.disbursed_amount_minor) == (
        "FIN-0001",
        "6222000033334444",
        st.disbursed_amount_minor,
    )


def test_discount_interest_rounds_half_up_in_minor_units() -> None:
    assert discount_interest(1_00, Decimal("0.05"), 36, "ACT/360") == 1  # 0.5 fen -> 1
    assert discount_interest(123_457, Decimal("0.0385"), 181, "ACT/365") == 2357  # 2357.06
    assert discount_interest(1_00, Decimal("0.05"), -3, "ACT/360") == 0


def test_rejections(bank, client: BankAFinancingClient, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    bank.desk.rules.conflicting_registrations.add("ZD-CONFLICT")
    client.submit_financing(request("FIN-R1", piece="P-R1", registration_no="ZD-CONFLICT"))
    client.submit_financing(request("FIN-R2", piece="P-R2", amount_minor=20_000_000_00))
    clock.now += timedelta(hours=5)
    r1, r2 = client.query_financing("FIN-R1"), client.query_financing("FIN-R2")
    assert r1.status == "REJECTED" and (r1.decision_reason or "").startswith("REGISTRY_CONFLICT")
    assert r2.status == "REJECTED" and (r2.decision_reason or "").startswith("LIMIT_EXCEEDED")
    assert list(client.disbursement_notices()) == []
    # a rejected piece may be offered again under a new serial
    assert (
        client.submit_financing(request("FIN-R3", piece="P-R1", registration_no="ZD-2")).status == "PENDING"
    )


def test_piece_financed_at_most_once_and_serial_conflict(client: BankAFinancingClient) -> None:
    client.submit_financing(request())
    again = client.submit_financing(request())
    assert again.duplicate
    with pytest.raises(SoapFault) as e:
        client.submit_financing(request("FIN-0002"))  # same piece, another serial
    assert e.value.code == "Client.PieceAlreadyFinanced"
    with pytest.raises(SoapFault) as e2:
        client.submit_financing(request(amount_minor=5_00))  # same serial, other content
    assert e2.value.code == "Client.SerialConflict"


def test_unknown_outcome_resolved_by_query_not_resend(bank, client: BankAFinancingClient) -> None:  # type: ignore[no-untyped-def]
    bank.faults.latency(1.0, operation="SubmitFinancing", after_apply=True)
    with pytest.raises(OutcomeUnknown):
        client.submit_financing(request(), resolve_unknown=False)
    ack = client.resolve_submit(request())
    assert ack.resolved_by_query and ack.status == "PENDING"
    assert bank.service.calls["SubmitFinancing"] == 1 and len(bank.desk.financings) == 1
    # the query shows the serial carries another amount: refuse, never resend
    with pytest.raises(FatalError, match="another application"):
        client.resolve_submit(request(amount_minor=1))


def test_drop_before_apply_then_resend_same_serial(bank, client: BankAFinancingClient) -> None:  # type: ignore[no-untyped-def]
    bank.faults.drop(operation="SubmitFinancing", after_apply=False)
    ack = client.submit_financing(request())
    assert not ack.resolved_by_query
    assert bank.service.calls == {"SubmitFinancing": 2, "QueryFinancing": 1}
    assert list(bank.desk.financings) == ["FIN-0001"]


def test_duplicate_delivery_no_second_effect(bank, client: BankAFinancingClient) -> None:  # type: ignore[no-untyped-def]
    bank.faults.duplicate(operation="SubmitFinancing")
    client.submit_financing(request())
    assert len(bank.desk.financings) == 1


def test_notices_paginate_to_the_end(bank, client: BankAFinancingClient, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    for k in range(5):
        client.submit_financing(request(f"FIN-P{k}", piece=f"P{k}"))
    clock.now += timedelta(hours=4)
    notices = list(client.disbursement_notices(page_size=2))
    assert [n.sequence for n in notices] == [1, 2, 3, 4, 5]
    assert bank.service.calls["GetDisbursementNotices"] == 3
    assert [n.serial for n in client.disbursement_notices(after_sequence=3)] == ["FIN-P3", "FIN-P4"]


def test_unknown_serial(client: BankAFinancingClient) -> None:
    with pytest.raises(NotFound):
        client.query_financing("NOPE")
