"""Bank A files: camt.053 statements generated from what was paid/disbursed, pain.001 in and
pain.002 out, fetched through the SFTP connector from a real OpenSSH sshd serving the sandbox's
directory."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.bank_a import BankAFiles, BankAFinancingClient, FinancingRequest
from connectors.sftp import FetchedFile, SftpClient, SftpSettings
from connectors.sftp_record import ProcessedFiles
from connectors.soap import UsernameTokenConfig
from connectors.treasury import TreasuryClient
from ledger.canonical import Party, PaymentInstruction, StatementEntry
from mappings.camt import iter_camt_items
from mappings.pain001 import render_pain001
from mappings.pain002 import parse_pain002
from mappings.statement_stream import Head, Tail
from sandbox.bank_a import start_bank_a_sandbox
from sandbox.sshd import Sshd, SshdUnavailable
from sandbox.treasury import start_treasury_sandbox

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SELLER = "6222000033334444"
OBLIGOR = Party(name="Obligor Co", account="6222000011112222", agent="105100000017")


class ManualClock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now


def nonces():  # type: ignore[no-untyped-def]
    n = itertools.count(1)
    return lambda: next(n).to_bytes(16, "big")


def pain001(tag: str, amounts: list[int]) -> bytes:
    items = [
        PaymentInstruction(
            f"I{tag}{k}",
            f"E2E{tag}{k}",
            a,
            "CNY",
            date(2026, 12, 1),
            OBLIGOR,
            Party(name="Supplier Co", account=SELLER, agent="105100000017"),
            f"clear {tag}{k}",
        )
        for k, a in enumerate(amounts)
    ]
    return render_pain001(items, version="09", initiating_party=Party(name="Obligor Co"), created_at=T0)


def statement_of(data: bytes) -> tuple[Head, list[StatementEntry], list[Tail]]:
    items = list(iter_camt_items(data, source="t"))
    head = next(i for i in items if isinstance(i, Head))
    return (
        head,
        [i for i in items if isinstance(i, StatementEntry)],
        [i for i in items if isinstance(i, Tail)],
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    try:
        server = Sshd(tmp_path_factory.mktemp("sshd")).start()
    except SshdUnavailable as e:
        pytest.skip(str(e))
    yield server
    server.stop()


@pytest.fixture
def world(clock: ManualClock, sshd: Sshd, tmp_path: Path):  # type: ignore[no-untyped-def]
    root = sshd.root / f"bank_a_{tmp_path.name}"
    treasury = start_treasury_sandbox(
        password="pw", clock=clock, execution_delay=timedelta(minutes=10), tick=None
    )
    bank = start_bank_a_sandbox(
        sftp_root=root,
        password="pw",
        clock=clock,
        decision_delay=timedelta(hours=1),
        disbursement_delay=timedelta(hours=1),
        linked_engines=[treasury.engine],
        opening_balances={SELLER: 50_00},
        tick=None,
    )
    yield treasury, bank, root
    bank.stop()
    treasury.stop()


def sftp_client(sshd: Sshd, data_dir: Path) -> SftpClient:
    settings = SftpSettings(
        system="bank_a",
        host=sshd.host,
        port=sshd.port,
        username=sshd.username,
        private_key=str(sshd.client_key),
        host_keys=(sshd.host_key_line,),
    )
    return SftpClient(
        settings,
        archive=Archive(data_dir / "archive"),
        record=ProcessedFiles(f"sqlite:///{data_dir / 'record.sqlite'}"),
    )


def test_statements_from_disbursements_and_treasury_payments(
    world, clock: ManualClock, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    treasury, bank, _ = world
    fin = BankAFinancingClient(
        endpoint=bank.url,
        username_token=UsernameTokenConfig("cvhub", "pw"),
        archive=Archive(tmp_path / "a"),
        clock=clock,
        nonce=nonces(),
    )
    fin.submit_financing(
        FinancingRequest(
            serial="FIN-S1",
            voucher_id="V9",
            piece_id="V9-P1",
            obligor_uscc="91310000MA1FL8L972",
            seller_uscc="91110108MA01ABCD1X",
            seller_name="Supplier Co",
            seller_account=SELLER,
            amount_minor=360_000_00,
            currency="CNY",
            annual_rate=Decimal("0.04"), registration_no="ZD-S1",
            maturity_date=date(2027, 3, 9),
        )
    )
    pay = TreasuryClient(
        endpoint=treasury.url,
        username_token=UsernameTokenConfig("cvhub", "pw"),
        archive=Archive(tmp_path / "a"),
        clock=clock,
        nonce=nonces(),
    )
    pay.submit_batch("PAY-S1", pain001("S", [1_234_56, 99]))
    clock.now += timedelta(hours=3)
    files = bank.write_statements()
    by_account = {p.name.split("_")[1]: p for p in files}
    assert set(by_account) == {SELLER, OBLIGOR.account}
    head, entries, _ = statement_of(by_account[SELLER].read_bytes())
    # 360,000.00 x 4 % x 99 days / 360 = 3,960.00 interest
    assert sorted(e.amount_minor for e in entries) == [99, 1_234_56, 360_000_00 - 3_960_00]
    assert {e.credit_debit for e in entries} == {"CRDT"}
    st = head.statement
    assert (st.sequence, st.opening_balance_minor) == (1, 50_00)
    assert st.closing_balance_minor == 50_00 + sum(e.amount_minor for e in entries)
    assert {e.end_to_end_id for e in entries} == {"FIN-S1", "E2ES0", "E2ES1"}
    _, debits, _ = statement_of(by_account[OBLIGOR.account].read_bytes())
    assert sorted(e.amount_minor for e in debits) == [99, 1_234_56] and {e.credit_debit for e in debits} == {
        "DBIT"
    }
    # nothing new -> no new statement; new activity -> the sequence and balance continue
    assert bank.write_statements() == []
    pay.submit_batch("PAY-S2", pain001("T", [10_00]))
    clock.now += timedelta(hours=1)
    (nxt,) = [p for p in bank.write_statements() if SELLER in p.name]
    head2, entries2, _ = statement_of(nxt.read_bytes())
    assert (head2.statement.sequence, head2.statement.opening_balance_minor) == (2, st.closing_balance_minor)
    assert [e.amount_minor for e in entries2] == [10_00]


def test_statement_fetch_over_sftp_exactly_once(
    world, clock: ManualClock, sshd: Sshd, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    treasury, bank, root = world
    treasury.engine.accept("PAY-F1", pain001("F", [7_00]), "09")
    clock.now += timedelta(hours=1)
    written = bank.write_statements()
    got: list[FetchedFile] = []
    with sftp_client(sshd, tmp_path) as sftp:
        files = BankAFiles(sftp, root=str(root))
        report = files.fetch_statements(tmp_path / "in", got.append)
        assert sorted(f.name for f in report.processed) == sorted(p.name for p in written)
        assert files.fetch_statements(tmp_path / "in", got.append).processed == []  # never twice
    assert [f.read_bytes() for f in sorted(got, key=lambda f: f.name)] == [
        p.read_bytes() for p in sorted(written, key=lambda p: p.name)
    ]


def test_payment_file_in_status_report_out(world, clock: ManualClock, sshd: Sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, bank, root = world
    doc = pain001("P", [5_00, 6_00])
    with sftp_client(sshd, tmp_path) as sftp:
        files = BankAFiles(sftp, root=str(root))
        up = files.send_payment_file("BATCH-P1", doc)
        assert files.send_payment_file("BATCH-P1", doc).status == "unchanged"  # idempotent delivery
        assert up.status == "uploaded"
        bank.bank.process_payment_files()
        assert (root / "inbox" / "processed" / "BATCH-P1.xml").read_bytes() == doc
        clock.now += timedelta(hours=1)
        bank.bank.process_payment_files()
        reports: list[FetchedFile] = []
        files.fetch_status_reports(tmp_path / "in", reports.append)
    (report,) = reports
    statuses = parse_pain002(report.read_bytes(), source=report.name)
    assert [s.status for s in statuses if s.level == "group"] == ["ACSC"]
    assert len([s for s in statuses if s.level == "transaction"]) == 2
    assert len(bank.bank.engine.executed()) == 2


def test_payment_file_without_marker_is_in_flight(world) -> None:  # type: ignore[no-untyped-def]
    _, bank, root = world
    (root / "inbox" / "pain001" / "BATCH-X.xml").write_bytes(pain001("X", [1_00]))
    bank.bank.process_payment_files()
    assert bank.bank.engine.batches == {}
    (root / "inbox" / "pain001" / "BATCH-X.xml.done").touch()
    bank.bank.process_payment_files()
    assert list(bank.bank.engine.batches) == ["BATCH-X"]


def test_invalid_payment_file_gets_rejection_report(world) -> None:  # type: ignore[no-untyped-def]
    _, bank, root = world
    inbox = root / "inbox" / "pain001"
    (inbox / "BATCH-BAD.xml").write_bytes(
        b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.09'/>"
    )
    (inbox / "BATCH-BAD.xml.done").touch()
    (path,) = bank.bank.process_payment_files()
    (status,) = parse_pain002(path.read_bytes(), source=path.name)
    assert (status.status, status.reason_code) == ("RJCT", "FF01")
