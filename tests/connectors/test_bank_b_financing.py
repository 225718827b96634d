"""Bank B connector against the Bank B sandbox: asynchronous decisions, disbursement notices,
query by serial, unknown outcome, signing, and statements (MT940 / GB18030 CSV) built from what
was disbursed, read back by the mappings parsers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from canonical.clock import SettableClock
from connectors.archive import Archive
from connectors.bank_b import BankBClient, FinancingApplication
from connectors.errors import ClientError, ConfigurationError, NotFound
from connectors.rest import HmacSigner, RestConfig
from sandbox.bank_b import BankBSandbox, discount_interest
from sandbox.rest_parties import enterprise

SUP = enterprise(5)
DAY = date(2027, 3, 8)  # the sandbox's business day: the test means the same on any real day


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BankBSandbox]:
    statements = tmp_path_factory.mktemp("bank_b_statements")
    with BankBSandbox(decision_delay=0.15, disbursement_delay=0.15, statement_dir=statements,
                      clock=SettableClock.on_day(DAY)) as sandbox:
        yield sandbox  # type: ignore[misc]


@pytest.fixture
def bank(box: BankBSandbox) -> Iterator[BankBSandbox]:
    box.reset()
    yield box


def client(box: BankBSandbox, tmp_path: Path, **kw: object) -> BankBClient:
    settings: dict[str, object] = dict(
        system="bank_b",
        base_url=box.url,
        signer=HmacSigner(box.key_id, box.secret),
        read_timeout=0.5,
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    settings.update(kw)
    return BankBClient(RestConfig(**settings), archive=Archive(tmp_path / "archive"), page_size=3)  # type: ignore[arg-type]


def application(
    serial: str,
    *,
    amount_minor: int = 100_000_000,
    registration_no: str | None = "20261128000000000009",
    days: int = 90,
) -> FinancingApplication:
    return FinancingApplication(
        serial_no=serial,
        voucher_id="CV-77",
        piece_id="CV-77-2",
        applicant_uscc=SUP.uscc,
        applicant_name=SUP.name,
        applicant_account=SUP.account,
        applicant_cnaps=SUP.cnaps,
        amount_minor=amount_minor,
        currency="CNY",
        maturity_date=DAY + timedelta(days=days),
        registration_no=registration_no,
    )


def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the sandbox"
        time.sleep(0.05)


def test_signing_is_required_by_the_connector(bank: BankBSandbox, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="signing"):
        client(bank, tmp_path, signer=None)
    with pytest.raises(ClientError) as info:
        client(bank, tmp_path, signer=HmacSigner(bank.key_id, "forged")).submit_financing(application("S-0"))
    assert info.value.status == 401 and bank.effects("S-0") == 0 and bank.requests("submit_application") == 1


def test_submit_then_asynchronous_decision_and_disbursement(bank: BankBSandbox, tmp_path: Path) -> None:
    c = client(bank, tmp_path)
    ack = c.submit_financing(application("S-1"))
    assert ack.status == "RECEIVED" and ack.amount_minor == 100_000_000 and not ack.replayed
    wait_for(lambda: c.query("S-1").status == "DISBURSED")
    state = c.query("S-1")
    days = (application("S-1").maturity_date - DAY).days
    interest = discount_interest(100_000_000, 365, days)
    assert state.discount_interest_minor == interest
    assert state.disbursed_amount_minor == 100_000_000 - interest and state.bank_ref
    pages = list(c.iter_notices())
    notices = [n for p in pages for n in p.notices]
    assert [(n.type, n.status) for n in notices] == [("DECISION", "APPROVED"), ("DISBURSEMENT", "DISBURSED")]
    assert next(iter(c.iter_notices(pages[-1].cursor))).notices == ()  # nothing new since the cursor


def test_rejections_are_decisions_not_errors(bank: BankBSandbox, tmp_path: Path) -> None:
    c = client(bank, tmp_path)
    c.submit_financing(application("S-2", registration_no=None))
    c.submit_financing(application("S-3", amount_minor=6_000_000_000))
    wait_for(lambda: c.query("S-3").status != "RECEIVED")
    assert c.query("S-2").reason_code == "NO_REGISTRATION"
    assert c.query("S-3").status == "REJECTED" and c.query("S-3").reason_code == "LIMIT_EXCEEDED"


def test_serial_is_the_idempotency_key(bank: BankBSandbox, tmp_path: Path) -> None:
    c = client(bank, tmp_path)
    c.submit_financing(application("S-4"))
    assert c.submit_financing(application("S-4")).replayed
    assert bank.effects("S-4") == 1
    with pytest.raises(ClientError) as info:
        c.submit_financing(application("S-4", amount_minor=1))
    assert info.value.status == 409 and "S-4" in str(info.value)
    with pytest.raises(NotFound):
        c.query("S-unknown")


@pytest.mark.parametrize("kind", ["drop_after", "drop_before", "timeout"])
def test_unknown_outcome_resolved_by_query_then_same_serial(
    kind: str, bank: BankBSandbox, tmp_path: Path
) -> None:
    serial = f"S-{kind}"
    bank.inject(
        kind, operation="submit_application", times=1, **({"delay": 1.0} if kind == "timeout" else {})
    )
    state = client(bank, tmp_path).submit_financing(application(serial))
    assert state.serial_no == serial and bank.effects(serial) == 1
    ops = [op for op, ref in bank.journal() if ref == serial]
    assert ops[:2] == ["submit_application", "query_application"]
    if kind == "timeout":
        # The query raced the slow original (not applied yet), so the connector resent under the
        # same serial; when the original finally lands it is a replay: still exactly one effect.
        wait_for(lambda: bank.requests("submit_application") >= 2)
        time.sleep(1.1)
        assert bank.effects(serial) == 1
    else:
        assert ops.count("submit_application") == (2 if kind == "drop_before" else 1)


def test_duplicate_notice_delivered_once(bank: BankBSandbox, tmp_path: Path) -> None:
    bank.seed(5)
    bank.inject("duplicate", operation="list_notices", times=2)
    ids = [n.notice_id for p in client(bank, tmp_path).iter_notices() for n in p.notices]
    assert len(ids) == len(set(ids)) == 5


def test_statements_from_what_was_disbursed(bank: BankBSandbox, tmp_path: Path) -> None:
    from mappings.statements import parse_statements

    c = client(bank, tmp_path)
    c.submit_financing(application("S-5"))
    wait_for(lambda: c.query("S-5").status == "DISBURSED")
    net = c.query("S-5").disbursed_amount_minor
    files = bank.close_day()
    sta = next(Path(f) for f in files if str(f).endswith(".sta"))
    csv = next(Path(f) for f in files if str(f).endswith(".csv"))
    assert sta.with_name(sta.name + ".done").exists()
    [mt] = parse_statements(sta.read_bytes(), source=sta.name, profile="mt940")
    assert mt.account == SUP.account and mt.closing_balance_minor == net
    [entry] = mt.entries
    assert (
        entry.credit_debit == "CRDT" and entry.amount_minor == net and "S-5" in (entry.remittance_info or "")
    )
    raw = csv.read_bytes()
    assert "融资放款".encode("gb18030") in raw  # GB18030, as Chinese banks write it
    [cn] = parse_statements(raw, source=csv.name, profile="csv-cn-bank")
    assert cn.entries[0].amount_minor == net and cn.entries[0].end_to_end_id == "S-5"
    assert bank.close_day() == []  # nothing moved since


def test_unknown_outcome_with_a_reused_serial_is_not_taken_for_success(bank: BankBSandbox,
                                                                       tmp_path: Path) -> None:
    """Query-then-resend must check that what Bank B holds under the serial is OUR application:
    a serial reused for another amount is a conflict, not a successful replay."""
    from connectors.errors import FatalError

    c = client(bank, tmp_path)
    c.submit_financing(application("S-reuse"))
    bank.inject("drop_after", operation="submit_application", times=1)
    with pytest.raises(FatalError, match="serial already used"):
        c.submit_financing(application("S-reuse", amount_minor=1))
    assert bank.effects("S-reuse") == 1
