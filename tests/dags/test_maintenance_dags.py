"""ledger_verify and quarantine_replay run through Airflow (dag.test) against a real ledger."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cvhub.settings import Settings
from ledger import quarantine
from plugins.cvhub_flows import replay as replay_registry
from plugins.cvhub_flows.airflow_env import AirflowEnvError, run_dag
from plugins.cvhub_flows.dag_defaults import logical_date_for
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session


def _valid_uscc(body: str) -> str:
    from stdnum.cn import uscc

    return body + uscc.calc_check_digit(body)


def test_ledger_verify_passes_then_fails_loudly_on_tamper(data_dir: Path) -> None:
    settings = Settings.from_env()
    ledger = ledger_for(settings)
    party = _valid_uscc("91110000MA01AB12C")
    res = ledger.apply([{"cmd": "register_party", "key": "party:1", "on": "2027-01-04", "uscc": party,
                         "name": "测试供应商", "roles": ["supplier"]}])
    assert res[0].ok, res
    ok = run_dag("ledger_verify", logical_date=logical_date_for(date(2027, 1, 4)))
    assert ok.ok and ok.task_states == {"verify": "success"}

    db = sqlite3.connect(settings.db_url.split("///", 1)[1])
    db.execute("UPDATE ledger_journal SET body = replace(body, '测试', '伪造') WHERE key = 'party:1'")
    db.commit()
    db.close()
    with pytest.raises(AirflowEnvError) as err:
        run_dag("ledger_verify", logical_date=logical_date_for(date(2027, 1, 5)))
    text = str(err.value)
    assert "verify" in text and "ledger verify FAILED" in text and "fatal" in text
    failed = run_dag("ledger_verify", logical_date=logical_date_for(date(2027, 1, 5)), check=False)
    assert failed.task_states == {"verify": "failed"}  # failed at once: no up_for_retry


def _ok_handler(item: quarantine.QuarantineItem) -> str:
    if item.context_dict.get("fail"):
        raise RuntimeError("still failing")
    return "applied"


def test_quarantine_replay_dag_replays_open_items_once(data_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    monkeypatch.setitem(replay_registry.HANDLERS, "dag_test", f"{__name__}:_ok_handler")
    at = datetime(2027, 1, 4, tzinfo=UTC)
    with ledger_session(settings) as s:
        sha = hashlib.sha256(b"x").hexdigest()
        ids = [quarantine.put(s, flow="dag_test", item_ref=f"R-{i}", source_sha256=sha,
                              reason_code="boom", message="boom", at=at).id for i in range(2)]
    result = run_dag("quarantine_replay", logical_date=datetime(2027, 1, 4, 1, tzinfo=UTC),
                     conf={"flow": "dag_test"})
    assert result.ok
    with ledger_session(settings) as s:
        assert {quarantine.get(s, i).status for i in ids} == {"replayed"}
    again = run_dag("quarantine_replay", logical_date=datetime(2027, 1, 4, 2, tzinfo=UTC),
                    conf={"item_ids": ids})
    assert again.ok
