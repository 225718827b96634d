"""srm_payables through Airflow against the SRM sandbox: issue, quarantine, replay, write-back, rerun."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cvhub.settings import Settings
from ledger import quarantine
from ledger.models import JournalEntry, VoucherRow
from plugins.cvhub_flows.airflow_env import run_dag
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session
from sandbox.rest_parties import OBLIGOR


@pytest.fixture
def srm(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from sandbox.srm import SrmSandbox

    with SrmSandbox() as sb:
        monkeypatch.setenv("AIRFLOW_CONN_CVHUB_SRM", json.dumps(
            {"conn_type": "http", "host": sb.url, "password": sb.token, "extra": {"auth": "bearer"}}))
        yield sb


def _journal(settings: Settings) -> int:
    with ledger_session(settings) as s:
        return int(s.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def test_srm_payables_issue_quarantine_replay_and_rerun(srm: object, data_dir: Path) -> None:
    settings = Settings.from_env()
    ledger = ledger_for(settings)
    setup = ledger.apply([
        {"cmd": "register_party", "key": f"party:{OBLIGOR.uscc}", "on": "2026-11-30", "uscc": OBLIGOR.uscc,
         "name": OBLIGOR.name, "roles": ["obligor"]},
        {"cmd": "set_quota", "key": "quota:1", "on": "2026-11-30", "obligor": OBLIGOR.uscc,
         "currency": "CNY", "limit": "3000.00"},
    ])
    assert all(r.ok for r in setup), setup
    for amount in ("1000.00", "1500.00", "12.345", "2000.00"):  # 12.345: over-precise; 2000: over quota
        srm.add_payable(amount=amount)  # type: ignore[attr-defined]

    when = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    first = run_dag("srm_payables", logical_date=when)
    assert first.ok, first
    assert set(first.task_states) == {"fetch", "issue", "write_back"}
    with ledger_session(settings) as s:
        assert s.scalar(select(func.count()).select_from(VoucherRow)) == 2
        items = {i.item_ref: i for i in quarantine.list_items(s, status="open", flow="srm_payables")}
    reasons = sorted(i.reason_code for i in items.values())
    assert len(reasons) == 2 and reasons[1] == "quota_exceeded", {k: (v.reason_code, v.message)
                                                                  for k, v in items.items()}
    assert reasons[0] in ("over_precise", "invalid_amount", "too_many_decimals"), reasons
    written = [p for p in srm._payables.values() if p["voucher"]]  # type: ignore[attr-defined]
    assert len(written) == 2 and {p["voucher"]["status"] for p in written} == {"ISSUED"}

    # rerun of the same interval: nothing changes
    before = _journal(settings)
    assert run_dag("srm_payables", logical_date=when).ok
    assert _journal(settings) == before

    # the operator raises the quota; the quota_exceeded item replays once, with no duplicate effect
    assert ledger.apply_one({"cmd": "set_quota", "key": "quota:2", "on": "2026-11-30",
                             "obligor": OBLIGOR.uscc, "currency": "CNY", "limit": "10000.00"}).ok
    over = next(i for i in items.values() if i.reason_code == "quota_exceeded")
    assert run_dag("quarantine_replay", logical_date=datetime(2026, 11, 30, 9, 20, tzinfo=UTC),
                   conf={"item_ids": [over.id]}).ok
    with ledger_session(settings) as s:
        assert s.scalar(select(func.count()).select_from(VoucherRow)) == 3
        assert quarantine.get(s, over.id).status == "replayed"
    after_replay = _journal(settings)
    assert run_dag("quarantine_replay", logical_date=datetime(2026, 11, 30, 9, 21, tzinfo=UTC),
                   conf={"item_ids": [over.id]}).ok
    assert _journal(settings) == after_replay
    assert sum(1 for p in srm._payables.values() if p["voucher"]) == 3  # type: ignore[attr-defined]
    assert ledger.verify().ok


def _setup_obligor(settings: Settings) -> None:
    res = ledger_for(settings).apply([
        {"cmd": "register_party", "key": f"party:{OBLIGOR.uscc}", "on": "2026-11-30", "uscc": OBLIGOR.uscc,
         "name": OBLIGOR.name, "roles": ["obligor"]},
        {"cmd": "set_quota", "key": "quota:1", "on": "2026-11-30", "obligor": OBLIGOR.uscc,
         "currency": "CNY", "limit": "1000000.00"},
    ])
    assert all(r.ok for r in res), res


def test_retriable_fault_is_retried_by_airflow_and_recovers(srm: object, data_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    _setup_obligor(settings)
    srm.add_payable(amount="100.00")  # type: ignore[attr-defined]
    # the connector itself does not retry here (max_attempts 1): Airflow's retry must do it
    monkeypatch.setenv("AIRFLOW_CONN_CVHUB_SRM", json.dumps(
        {"conn_type": "http", "host": srm.url, "password": srm.token,  # type: ignore[attr-defined]
         "extra": {"auth": "bearer", "max_attempts": 1}}))
    srm.inject("server_error", operation="list_payables", times=1)  # type: ignore[attr-defined]
    result = run_dag("srm_payables", logical_date=datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    assert result.ok, result
    assert any(f.startswith("retriable srm_payables.fetch") for f in result.failures), result.failures
    with ledger_session(settings) as s:
        assert s.scalar(select(func.count()).select_from(VoucherRow)) == 1


def test_fatal_fault_is_quarantined_then_replayed_once(srm: object, data_dir: Path) -> None:
    settings = Settings.from_env()
    _setup_obligor(settings)
    payable = srm.add_payable(amount="200.00")  # type: ignore[attr-defined]
    pid = payable["payable_id"]
    srm.inject("client_error", operation="write_back_voucher", times=100, status=422)  # type: ignore[attr-defined]
    result = run_dag("srm_payables", logical_date=datetime(2026, 11, 30, 11, 0, tzinfo=UTC))
    assert result.ok  # the item failed, not the flow: the rest went on
    with ledger_session(settings) as s:
        items = quarantine.list_items(s, status="open", flow="srm_payables")
    assert [i.item_ref for i in items] == [f"writeback:{pid}"] and items[0].reason_code == "ClientError"
    assert srm.payable(pid)["voucher"] is None  # type: ignore[attr-defined]

    srm.clear_faults()  # type: ignore[attr-defined]
    before = _journal(settings)
    assert run_dag("quarantine_replay", logical_date=datetime(2026, 11, 30, 11, 5, tzinfo=UTC),
                   conf={"flow": "srm_payables"}).ok
    assert run_dag("quarantine_replay", logical_date=datetime(2026, 11, 30, 11, 6, tzinfo=UTC),
                   conf={"item_ids": [items[0].id]}).ok
    written = srm.payable(pid)["voucher"]  # type: ignore[attr-defined]
    assert written is not None and written["status"] == "ISSUED"
    assert srm.effects(pid) == 1  # type: ignore[attr-defined]
    assert _journal(settings) == before  # the replay wrote nothing new to the ledger
    with ledger_session(settings) as s:
        assert quarantine.get(s, items[0].id).status == "replayed"
