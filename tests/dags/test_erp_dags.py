"""erp_ap_import and erp_gl_export through Airflow against the ERP sandbox (SFTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cvhub.settings import Settings
from ledger import quarantine
from ledger.models import JournalEntry, PayableRow
from plugins.cvhub_flows.airflow_env import run_dag
from plugins.cvhub_flows.dag_defaults import logical_date_for
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session
from sandbox.rest_parties import OBLIGOR, enterprise


@pytest.fixture
def erp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from sandbox.erp import prepare
    from sandbox.sftp_server import SftpSandbox, generate_ed25519_key

    private, public = generate_ed25519_key()
    box = SftpSandbox(tmp_path / "erp_root", authorized_key=public)
    info = box.start()
    prepare(box)
    monkeypatch.setenv("AIRFLOW_CONN_CVHUB_ERP", json.dumps(
        {"conn_type": "sftp", "host": info.host, "port": info.port, "login": info.username,
         "extra": {"private_key": private, "host_key": info.host_key_line, "inbox": "erp/outbox",
                   "outbox": "erp/inbox"}}))
    yield box
    box.stop()


def _row(n: int, amount: str) -> dict[str, str]:
    s = enterprise(n)
    return {"payable_id": f"ERP-AP-{n:04d}", "obligor_uscc": OBLIGOR.uscc, "supplier_uscc": s.uscc,
            "supplier_name": s.name, "amount": amount, "currency": "CNY", "due_date": "2027-03-01",
            "invoice_no": f"INV{n}", "contract_no": "", "receipt_no": "", "confirmed_at": ""}


def test_ap_import_registers_payables_and_gl_export_delivers_a_balanced_journal(
        erp: object, data_dir: Path) -> None:
    from mappings.gl import parse_gl_journal
    from sandbox.erp import GL_DIR, drop_ap_export

    settings = Settings.from_env()
    drop_ap_export(erp, "AP_20261130.csv", [_row(1, "1000.00"), _row(2, "12.345"), _row(3, "2500.50")])
    when = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
    assert run_dag("erp_ap_import", logical_date=when).ok
    with ledger_session(settings) as s:
        assert s.scalar(select(func.count()).select_from(PayableRow)) == 2
        items = quarantine.list_items(s, status="open", flow="erp_ap_import")
    assert len(items) == 1 and items[0].line is not None and items[0].reason_code != ""
    # rerun: the file is not processed twice, nothing changes
    assert run_dag("erp_ap_import", logical_date=when).ok
    with ledger_session(settings) as s:
        entries = s.scalar(select(func.count()).select_from(JournalEntry))

    # issue a voucher on the payable (as the SRM flow would), then export the day's GL journal
    ledger = ledger_for(settings)
    day = "2026-11-30"
    res = ledger.apply([
        {"cmd": "set_quota", "key": "q", "on": day, "obligor": OBLIGOR.uscc, "currency": "CNY",
         "limit": "100000.00"},
        {"cmd": "issue", "key": "erp-test:issue:1", "on": day, "obligor": OBLIGOR.uscc,
         "supplier": enterprise(1).uscc, "currency": "CNY", "amount": "1000.00", "maturity": "2027-03-01",
         "backing": [{"payable_id": "ERP-AP-0001", "amount": "1000.00"}]},
    ])
    assert all(r.ok for r in res), res
    assert entries is not None
    d = date(2026, 11, 30)
    assert run_dag("erp_gl_export", logical_date=logical_date_for(d)).ok
    assert run_dag("erp_gl_export", logical_date=logical_date_for(d)).ok  # same bytes: no second file
    files = sorted(p for p in erp.path(GL_DIR).iterdir()  # type: ignore[attr-defined]
                   if p.suffix == ".csv")
    assert len(files) == 1
    journal = parse_gl_journal(files[0].read_bytes(), source=files[0].name)
    assert len(journal.postings) == 1 and journal.postings[0].kind == "issuance"
    lines = journal.postings[0].lines
    assert sum(x.debit_minor for x in lines) == sum(x.credit_minor for x in lines) > 0
