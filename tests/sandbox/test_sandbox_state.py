"""Durable sandbox state (``sandbox.state``): the store itself, kill -9 in the middle of writing, and
every sandbox resuming what it knew after a restart on the same state directory."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from canonical.clock import FrozenClock, SettableClock
from sandbox.state import SandboxStore, high_water, read_tables

T0 = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)


# --- the store ---------------------------------------------------------------------------------------

def test_store_commits_whole_transactions_only(tmp_path: Path) -> None:
    store = SandboxStore.open(tmp_path, "box")
    with store.transaction():
        store.put("t", "a", {"n": 1})
        with store.transaction():          # reentrant: the outer block commits
            store.put("t", "b", [1, "二"])
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.put("t", "c", 3)
        store.put("t", "a", {"n": 99})
        _ = 1 / 0                          # the whole block rolls back
    with pytest.raises(RuntimeError, match="outside a transaction"):
        store.put("t", "d", 4)
    with store.transaction():
        store.put("t", "a", {"n": 2})      # an update keeps the key's place
        store.put("t", "z", 0)
    store.close()
    again = SandboxStore.open(tmp_path, "box")
    assert list(again.load("t").items()) == [("a", {"n": 2}), ("b", [1, "二"]), ("z", 0)]
    assert again.get("t", "c") is None and again.get("t", "a") == {"n": 2}


def test_in_memory_store_keeps_nothing() -> None:
    store = SandboxStore.open(None, "box")
    with store.transaction():
        store.put("t", "a", 1)
        store.stage("f", b"data", name="f")
    assert not store.durable and store.load("t") == {} and store.staged() == []


def test_staged_files_survive_until_unstaged(tmp_path: Path) -> None:
    store = SandboxStore.open(tmp_path, "box")
    with store.transaction():
        store.stage("statement:1", b"\x00bytes", name="S1.sta")
    store.close()
    store = SandboxStore.open(tmp_path, "box")
    assert store.staged() == [("statement:1", b"\x00bytes", {"name": "S1.sta"})]
    store.unstage("statement:1")
    assert store.staged() == []


def test_high_water_is_the_latest_commit_of_any_sandbox(tmp_path: Path) -> None:
    assert high_water(tmp_path) is None
    for name, at in (("a", T0 + timedelta(hours=5)), ("b", T0)):
        store = SandboxStore.open(tmp_path, name, clock=FrozenClock(at))
        with store.transaction():
            store.put("t", "k", 1)
        store.close()
    assert high_water(tmp_path) == T0 + timedelta(hours=5)


WRITER = textwrap.dedent("""
    import sys
    from sandbox.state import SandboxStore
    store = SandboxStore.open(sys.argv[1], "box")
    n = 0
    while True:
        n += 1
        with store.transaction():   # three rows that only make sense together
            store.put("pairs", f"{n}:a", n)
            store.put("pairs", f"{n}:b", n)
            store.put("meta", "n", n)
        if n == 200:
            print("ready", flush=True)
""")


def test_kill_9_while_writing_leaves_a_consistent_state(tmp_path: Path) -> None:
    """A real SIGKILL of a process committing in a loop: every transaction is there whole or not at
    all, and the store opens and carries on (the sandboxes' crash-safety rests on this)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=root,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    tables = read_tables(tmp_path / "box.sqlite")
    n = tables["meta"]["n"]
    assert n >= 200
    assert set(tables["pairs"]) == {f"{i}:{s}" for i in range(1, n + 1) for s in "ab"}
    store = SandboxStore.open(tmp_path, "box")
    with store.transaction():
        store.put("meta", "n", n + 1)
    assert store.get("meta", "n") == n + 1


# --- each sandbox resumes -------------------------------------------------------------------------

def test_registry_resumes_registrations_and_request_numbers(tmp_path: Path) -> None:
    from sandbox.registry import RegistrySandbox
    from sandbox.rest_parties import OBLIGOR, enterprise

    funder = enterprise(900)
    body = {"request_no": "REQ-1", "kind": "TRANSFER", "grantor": {"uscc": OBLIGOR.uscc, "name": "出让人"},
            "grantee": {"uscc": funder.uscc, "name": "受让人"},
            "property": {"voucher_id": "CV1", "amount": "100.00", "currency": "CNY"}, "term_months": 6}
    clock = SettableClock(T0)
    with RegistrySandbox(clock=clock, state_dir=tmp_path, api_key="k") as box:
        first = requests.post(box.url + "/api/v1/registrations", json=body, headers={"X-Api-Key": "k"},
                              timeout=10)
        assert first.status_code == 201
        number = first.json()["registration_no"]
    box.close()
    with RegistrySandbox(clock=clock, state_dir=tmp_path, api_key="k") as box:
        h = {"X-Api-Key": "k"}
        again = requests.post(box.url + "/api/v1/registrations", json=body, headers=h, timeout=10)
        assert again.status_code == 200 and again.json()["registration_no"] == number  # a replay
        other = requests.post(box.url + "/api/v1/registrations", json={**body, "request_no": "REQ-2"},
                              headers=h, timeout=10).json()
        assert other["registration_no"].endswith("000000000002")   # numbering carries on
        cxl = requests.post(f"{box.url}/api/v1/registrations/{number}/cancellation",
                            json={"request_no": "CXL-1", "reason": "settled"}, headers=h, timeout=10)
        assert cxl.json()["status"] == "CANCELLED"
        assert box.effects("REQ-1") == 1 and box.effects("CXL-1") == 1
    box.close()
    with RegistrySandbox(clock=clock, state_dir=tmp_path, api_key="k") as box:
        assert box.registration(number)["status"] == "CANCELLED"
        assert box.effects("REQ-1") == 1 and box.effects("REQ-2") == 1
    box.close()


def test_srm_resumes_payables_write_backs_and_idempotency_keys(tmp_path: Path) -> None:
    from sandbox.srm import SrmSandbox

    clock = SettableClock(T0)
    box = SrmSandbox(clock=clock, state_dir=tmp_path, token="t").start()
    box.add_payable(payable_id="AP-1", amount="10.00")
    h = {"Authorization": "Bearer t", "Idempotency-Key": "wb-1"}
    wb = {"voucher_no": "CV1", "status": "ISSUED"}
    assert requests.post(box.url + "/api/v1/payables/AP-1/voucher", json=wb, headers=h, timeout=10).ok
    box.close()
    box = SrmSandbox(clock=clock, state_dir=tmp_path, token="t").start()
    try:
        replay = requests.post(box.url + "/api/v1/payables/AP-1/voucher", json=wb, headers=h, timeout=10)
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert box.payable("AP-1")["voucher"]["voucher_no"] == "CV1" and box.effects("AP-1") == 1
        assert box.add_payable()["payable_id"] == "AP-20261128-000002"   # numbering carries on
        page = requests.get(box.url + "/api/v1/payables", headers={"Authorization": "Bearer t"},
                            timeout=10).json()
        assert [p["payable_id"] for p in page["items"]] == ["AP-1", "AP-20261128-000002"]
    finally:
        box.close()


def _bank_b_client(box: object, tmp_path: Path) -> object:
    from connectors.archive import Archive
    from connectors.bank_b import BankBClient
    from connectors.rest import HmacSigner, RestConfig

    return BankBClient(RestConfig(system="bank_b", base_url=box.url,  # type: ignore[attr-defined]
                                  signer=HmacSigner(box.key_id, box.secret)),  # type: ignore[attr-defined]
                       archive=Archive(tmp_path / "archive"))


def test_bank_b_resumes_applications_notices_and_statement_sequences(tmp_path: Path) -> None:
    from connectors.bank_b.client import FinancingApplication
    from sandbox.bank_b import BankBSandbox
    from sandbox.rest_parties import enterprise

    sup = enterprise(3)
    clock = FrozenClock(T0)
    delivered: dict[str, bytes] = {}

    def box() -> BankBSandbox:
        return BankBSandbox(clock=clock, state_dir=tmp_path / "state", secret="s3cret-bank-b",
                            decision_delay=0.0, disbursement_delay=0.0,
                            deliver=delivered.__setitem__).start()

    app = FinancingApplication(serial_no="CVF1", voucher_id="CV1", piece_id="CV1-1", applicant_uscc=sup.uscc,
                               applicant_name=sup.name, applicant_account=sup.account,
                               applicant_cnaps=sup.cnaps, amount_minor=100_000_00, currency="CNY",
                               maturity_date=date(2027, 6, 1), registration_no="20270308000000000001",
                               recourse=True)
    b = box()
    client = _bank_b_client(b, tmp_path)
    client.submit_financing(app)  # type: ignore[attr-defined]
    clock.advance(timedelta(seconds=1))
    assert client.query("CVF1").status == "DISBURSED"  # type: ignore[attr-defined]
    first = b.close_day(T0.date())
    b.close()
    b = box()
    client = _bank_b_client(b, tmp_path)
    try:
        assert client.submit_financing(app).status == "DISBURSED"  # type: ignore[attr-defined]
        assert b.effects("CVF1") == 1
        pages = list(client.iter_notices(since=None))  # type: ignore[attr-defined]
        assert [n.state.status for p in pages for n in p.notices] == ["APPROVED", "DISBURSED"]
        b.book(sup.account, "CRDT", 500, reference="R2", end_to_end_id=None, remittance="x",
               day=T0.date() + timedelta(days=1))
        second = b.close_day(T0.date() + timedelta(days=1))
    finally:
        b.close()
    assert [str(n)[-10:] for n in first] == ["_00001.sta", "_00001.csv"]
    assert [str(n)[-10:] for n in second] == ["_00002.sta", "_00002.csv"]   # the sequence continues
    closing = next(x for x in delivered[str(first[0])].decode().splitlines() if x.startswith(":62F:"))
    opening = next(x for x in delivered[str(second[0])].decode().splitlines() if x.startswith(":60F:"))
    assert opening[5] + opening[12:] == closing[5] + closing[12:] != "CCNY0,00"   # opening = last closing


def _pain001(msg_payees: int = 2) -> bytes:
    from ledger.canonical import Party, PaymentInstruction
    from mappings.pain001 import render_pain001

    debtor = Party(name="华北建设集团有限公司", account="110000000000000001", agent="105100000017",
                   uscc="91110000MA0000001L")
    items = [PaymentInstruction(instruction_id=f"I{i}", end_to_end_id=f"E2E{i}", amount_minor=1000 * i,
                                currency="CNY", debtor=debtor, requested_execution_date=date(2027, 3, 8),
                                creditor=Party(name=f"供应商{i}", account=f"62220000000000{i:02d}",
                                               agent="102100099996"))
             for i in range(1, msg_payees + 1)]
    return render_pain001(items, version="09", created_at=T0,
                          initiating_party=Party(name="cvhub", uscc="91110000MA0000001L"))


def test_treasury_resumes_batches_executions_and_reports(tmp_path: Path) -> None:
    from sandbox.treasury import PaymentEngine, RejectAccounts

    clock = FrozenClock(T0)
    data = _pain001()

    def engine() -> PaymentEngine:
        return PaymentEngine(clock=clock, execution_delay=timedelta(seconds=1),
                             reject_rule=RejectAccounts(closed_accounts={"6222000000000002"}),
                             store=SandboxStore.open(tmp_path, "treasury", clock=clock))

    e = engine()
    batch, duplicate = e.accept("MSG-1", data, "09")
    assert not duplicate and batch.status == "PDNG"
    e.store.close()
    e = engine()
    assert e.accept("MSG-1", data, "09")[1] is True and e.applied["MSG-1"] == 1   # known after restart
    clock.advance(timedelta(seconds=2))
    assert e.advance() == 2
    e.store.close()
    e = engine()
    b = e.get("MSG-1")
    assert b is not None and [r.status for r in b.results] == ["ACSC", "RJCT"] and b.status == "PART"
    assert [(r.sequence, r.serial) for r in e.reports] == [(1, "MSG-1")]
    assert e.advance() == 0                                      # executed once, never again
    assert [p.instruction.end_to_end_id for p in e.executed()] == ["E2E1"]


def test_bank_a_resumes_financings_notices_and_statements(tmp_path: Path) -> None:
    from sandbox.bank_a import BankA, Financing, FinancingDesk

    clock = FrozenClock(T0)

    def bank() -> BankA:
        store = SandboxStore.open(tmp_path / "state", "bank_a", clock=clock)
        desk = FinancingDesk(clock=clock, decision_delay=timedelta(0), disbursement_delay=timedelta(0),
                             store=store)
        return BankA(sftp_root=tmp_path / "sftp", clock=clock, desk=desk, store=store)

    f = Financing(serial="CVF1", sha256="x" * 64, voucher_id="CV1", piece_id="CV1-1", seller_name="卖方",
                  seller_account="6222000000000001", amount_minor=100_000_00, currency="CNY",
                  rate=Decimal("0.0385"), day_count="ACT/360", recourse=True, maturity=date(2027, 6, 8),
                  registration_no="20270308000000000001", received_at=T0)
    a = bank()
    a.desk.submit(f)
    a.desk.advance()
    assert a.desk.get("CVF1").status == "DISBURSED"  # type: ignore[union-attr]
    first = a.write_statements()
    a.store.close()
    a = bank()
    g = a.desk.get("CVF1")
    assert g is not None and g.status == "DISBURSED" and g.rate == Decimal("0.0385")
    assert [n.sequence for n in a.desk.notices] == [1] and a.desk.applied["CVF1"] == 1
    assert a.desk.submit(f)[1] is True                           # a replay, not a second application
    assert a.write_statements() == []                             # nothing new to report after restart
    assert [p.name for p in first] == ["camt053_6222000000000001_00001.xml"]


def test_a_statement_staged_before_a_crash_is_written_at_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies between committing a statement and writing its file (simulated: the write
    raises); the next start writes it, byte for byte, and the sequence has no gap."""
    import sandbox.bank_a as bank_a_mod
    from sandbox.bank_a import BankA, Financing, FinancingDesk

    clock = FrozenClock(T0)

    def bank() -> BankA:
        store = SandboxStore.open(tmp_path / "state", "bank_a", clock=clock)
        desk = FinancingDesk(clock=clock, decision_delay=timedelta(0), disbursement_delay=timedelta(0),
                             store=store)
        return BankA(sftp_root=tmp_path / "sftp", clock=clock, desk=desk, store=store)

    a = bank()
    a.desk.submit(Financing(serial="CVF1", sha256="x" * 64, voucher_id="CV1", piece_id="CV1-1",
                            seller_name="卖方", seller_account="6222000000000001", amount_minor=100_00,
                            currency="CNY", rate=Decimal("0.03"), day_count="ACT/360", recourse=True,
                            maturity=date(2027, 6, 8), registration_no="R1", received_at=T0))
    real = bank_a_mod.write_atomic

    def dies(path: Path, data: bytes, **kw: object) -> Path:
        raise SystemExit("killed")   # stands in for the process dying right after the commit

    monkeypatch.setattr(bank_a_mod, "write_atomic", dies)
    with pytest.raises(SystemExit):
        a.write_statements()
    a.store.close()
    target = tmp_path / "sftp" / "outbox" / "statements" / "camt053_6222000000000001_00001.xml"
    assert not target.exists()
    monkeypatch.setattr(bank_a_mod, "write_atomic", real)
    staged = read_tables(tmp_path / "state" / "bank_a.sqlite")["_staged"]
    rendered = base64.b64decode(next(iter(staged.values()))["data"])
    a = bank()
    assert target.read_bytes() == rendered                      # written at start, as rendered
    assert (target.parent / (target.name + ".done")).exists()
    assert a.write_statements() == [] and a.store.staged() == []


def test_the_stack_resumes_and_its_clock_never_runs_backwards(tmp_path: Path) -> None:
    from plugins.cvhub_flows.sandbox_stack import SandboxStack

    later = T0 + timedelta(days=30, hours=3)
    with SandboxStack(tmp_path, SettableClock(later)) as stack:
        stack.srm.add_payable(payable_id="AP-9", amount="1.00")
        stack.advance_to_day(T0.date())          # earlier: not a move
        assert stack.clock() >= later
    clock = SettableClock(T0)
    with SandboxStack(tmp_path, clock) as stack:
        assert clock() >= later                  # started no earlier than the last commit
        assert stack.srm.payable("AP-9") is not None
        assert {p.name for p in stack.state_dir.glob("*.sqlite")} >= {"srm.sqlite", "registry.sqlite",
                                                                       "treasury.sqlite", "bank_a.sqlite",
                                                                       "bank_b.sqlite"}
