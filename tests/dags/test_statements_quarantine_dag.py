"""statements_bank_a: a statement file that fails its checks is quarantined whole; good files flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cvhub.settings import Settings
from ledger import quarantine
from ledger.canonical import Statement, StatementEntry
from plugins.cvhub_flows.airflow_env import run_dag
from plugins.cvhub_flows.dag_defaults import logical_date_for
from plugins.cvhub_flows.ledger_session import ledger_session


@pytest.fixture
def bank_sftp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from sandbox.sftp_server import SftpSandbox, generate_ed25519_key

    private, public = generate_ed25519_key()
    box = SftpSandbox(tmp_path / "bank_a_root", authorized_key=public)
    info = box.start()
    monkeypatch.setenv("AIRFLOW_CONN_CVHUB_BANK_A_SFTP", json.dumps(
        {"conn_type": "sftp", "host": info.host, "port": info.port, "login": info.username,
         "extra": {"private_key": private, "host_key": info.host_key_line}}))
    yield box
    box.stop()


def _camt(seq: int, opening: int, amounts: list[int]) -> bytes:
    from mappings.camt import render_camt053

    day = date(2027, 3, 1)
    entries = tuple(StatementEntry(amount_minor=a, currency="CNY", credit_debit="CRDT", booking_date=day,
                                   value_date=day, end_to_end_id=f"E2E{seq}{i}",
                                   account_servicer_ref=f"R{seq}{i}") for i, a in enumerate(amounts))
    st = Statement(source_format="camt.053.001.08", statement_id=f"ST{seq}", account="110000000000000077",
                   currency="CNY", sequence=seq, created_at=datetime(2027, 3, 1, 18, tzinfo=UTC),
                   from_date=day, to_date=day, opening_balance_minor=opening,
                   closing_balance_minor=opening + sum(amounts), entries=entries)
    return render_camt053(st, created_at=datetime(2027, 3, 1, 18, tzinfo=UTC))


def test_bad_statement_file_is_quarantined_and_the_good_one_reconciles(bank_sftp: object,
                                                                       data_dir: Path) -> None:
    good = _camt(1, 0, [10000, 25000])
    closing = b"<Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"CNY\">400.00<"
    bad = _camt(2, 35000, [5000]).replace(closing, closing.replace(b"400.00", b"401.00"))  # off by 1.00
    assert bad != _camt(2, 35000, [5000])
    for n, data in ((1, good), (2, bad)):
        bank_sftp.put_file("outbox/statements", f"camt053_110000000000000077_{n:05d}.xml", data)  # type: ignore[attr-defined]
    result = run_dag("statements_bank_a", logical_date=logical_date_for(date(2027, 3, 1)))
    assert result.ok, result
    assert sum(1 for k in result.task_states if k.startswith("reconcile[")) == 2  # mapped per file
    settings = Settings.from_env()
    with ledger_session(settings) as s:
        items = quarantine.list_items(s, status="open", flow="statements_bank_a")
        seq = quarantine.get_cursor(s, "statements_bank_a", "seq:110000000000000077")
    assert [(i.item_ref, i.reason_code) for i in items] == [("camt053_110000000000000077_00002.xml",
                                                             "balance_mismatch")]
    assert seq == "1"  # the good statement was accepted, the bad one was not
