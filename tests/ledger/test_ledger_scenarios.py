"""Walks every scenario file in tests/ledger/scenarios: JSON-lines commands with the expected
result, data and postings beside each, plus `verify`, `instructions` and `tamper` checks.

Notation: a first line {"aliases": {"O": "<uscc>", ...}} lets "$O" stand for the value anywhere in a
string. "expect" is a result code, or {"result", "data" (subset), "postings" (exact, in order)}.
A refused command must leave the database byte-for-byte unchanged (every ledger table compared).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.api import Ledger

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.jsonl"))
TABLES = [
    "ledger_journal",
    "ledger_postings",
    "ledger_chain_head",
    "ledger_parties",
    "ledger_accounts",
    "ledger_quotas",
    "ledger_payables",
    "ledger_vouchers",
    "ledger_backings",
    "ledger_pieces",
    "ledger_transfers",
    "ledger_financings",
    "ledger_instructions",
]


def snapshot(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            t: sorted(map(tuple, conn.exec_driver_sql(f"SELECT * FROM {t}").all()), key=repr) for t in TABLES
        }


def substitute(value: Any, aliases: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$([A-Z][A-Z0-9]*)", lambda m: aliases[m.group(1)], value)
    if isinstance(value, list):
        return [substitute(v, aliases) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, aliases) for k, v in value.items()}
    return value


def postings_of(engine: Engine, seq: int) -> list[list[Any]]:
    with engine.connect() as conn:
        return [
            list(r)
            for r in conn.exec_driver_sql(
                "SELECT account, currency, amount_minor FROM ledger_postings "
                f"WHERE entry_seq = {seq} ORDER BY idx"
            )
        ]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path: Path, tmp_path: Path) -> None:
    walk(path, f"sqlite:///{tmp_path / 'ledger.sqlite'}")


@pytest.mark.postgres
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_postgresql(path: Path, pg_url: str) -> None:
    walk(path, pg_url)


def walk(path: Path, url: str) -> None:
    led = Ledger.open(url)
    aliases: dict[str, str] = {}
    try:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            where = f"{path.name}:{lineno}"
            step = json.loads(line)
            if "aliases" in step:
                aliases = step["aliases"]
                continue
            step = substitute(step, aliases)
            expect = step.pop("expect")
            if "tamper" in step:
                with led.engine.begin() as conn:
                    for sql in step["tamper"]:
                        conn.exec_driver_sql(sql)
                report = led.verify()
                with led.engine.begin() as conn:
                    for sql in step["undo"]:
                        conn.exec_driver_sql(sql)
                assert not report.ok, f"{where}: tampering not detected"
                v = report.first_violation
                assert v is not None and v.field == expect["field"], f"{where}: {report.summary}"
                if "entry" in expect:
                    assert v.entry == expect["entry"], f"{where}: {report.summary}"
                assert led.verify().ok, f"{where}: undo did not restore the ledger"
            elif step.get("check") == "verify":
                report = led.verify()
                assert report.ok == expect["ok"], f"{where}: {report.summary}"
            elif step.get("check") == "instructions":
                got = led.open_instructions()
                assert len(got) == len(expect), f"{where}: {got}"
                for g, e in zip(got, expect, strict=True):
                    for k, v in e.items():
                        assert getattr(g, k) == v, f"{where}: {k}: {getattr(g, k)!r} != {v!r}"
            else:
                if isinstance(expect, str):
                    expect = {"result": expect}
                before = snapshot(led.engine) if expect["result"] not in ("ok",) else None
                r = led.apply_one(step)
                assert r.result == expect["result"], f"{where}: {r.to_json()}"
                for k, v in expect.get("data", {}).items():
                    assert r.data.get(k) == v, f"{where}: data.{k}: {r.data.get(k)!r} != {v!r}"
                if "postings" in expect:
                    assert r.seq is not None
                    assert postings_of(led.engine, r.seq) == expect["postings"], where
                if before is not None:
                    assert snapshot(led.engine) == before, f"{where}: a {r.result} command wrote something"
        assert led.verify().ok
    finally:
        led.close()
