"""registry_sync with the manual (human-in-the-loop) adapter: financing waits for the operator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from cvhub.settings import Settings
from ledger.models import FinancingRow
from plugins.cvhub_flows.airflow_env import run_dag
from plugins.cvhub_flows.banks import BANKS
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session
from sandbox.rest_parties import OBLIGOR, enterprise


def test_manual_registry_packet_waits_for_the_operator(data_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.registry.manual import ManualRegistry

    monkeypatch.setenv("AIRFLOW_CONN_CVHUB_REGISTRY", json.dumps({"conn_type": "generic",
                                                                  "extra": {"adapter": "manual"}}))
    settings = Settings.from_env()
    sup, bank, day = enterprise(7), BANKS[0], "2026-11-30"
    cmds = [
        {"cmd": "register_party", "key": "p1", "on": day, "uscc": OBLIGOR.uscc, "name": OBLIGOR.name,
         "roles": ["obligor"]},
        {"cmd": "register_party", "key": "p2", "on": day, "uscc": sup.uscc, "name": sup.name,
         "roles": ["supplier"]},
        {"cmd": "register_party", "key": "p3", "on": day, "uscc": bank.funder_uscc, "name": bank.funder_name,
         "roles": ["funder"]},
        {"cmd": "set_quota", "key": "q", "on": day, "obligor": OBLIGOR.uscc, "currency": "CNY",
         "limit": "100000.00"},
        {"cmd": "register_payable", "key": "ap", "on": day, "payable_id": "AP-1", "obligor": OBLIGOR.uscc,
         "supplier": sup.uscc, "currency": "CNY", "amount": "5000.00"},
        {"cmd": "issue", "key": "iss", "on": day, "voucher_no": "CVTEST0001", "obligor": OBLIGOR.uscc,
         "supplier": sup.uscc, "currency": "CNY", "amount": "5000.00", "maturity": "2027-03-01",
         "backing": [{"payable_id": "AP-1", "amount": "5000.00"}]},
        {"cmd": "accept", "key": "acc", "on": day, "voucher_no": "CVTEST0001"},
        {"cmd": "finance", "key": "fin-1", "on": day, "piece_no": "CVTEST0001-1", "holder": sup.uscc,
         "funder": bank.funder_uscc, "rate": "0.0385"},
    ]
    results = ledger_for(settings).apply(cmds)
    assert all(r.ok for r in results), [r for r in results if not r.ok]

    def registration() -> str | None:
        with ledger_session(settings) as s:
            return s.scalars(select(FinancingRow.registration_no)).one()

    assert run_dag("registry_sync", logical_date=datetime(2026, 11, 30, 13, 0, tzinfo=UTC)).ok
    assert registration() is None  # filed as a packet: waiting for the operator
    registry = ManualRegistry(data_dir=settings.data_dir)
    packets = registry.list_packets("PENDING")
    assert len(packets) == 1
    registry.confirm(packets[0]["packet_id"], "ZD2026113000000777")
    assert run_dag("registry_sync", logical_date=datetime(2026, 11, 30, 13, 15, tzinfo=UTC)).ok
    assert registration() == "ZD2026113000000777"
