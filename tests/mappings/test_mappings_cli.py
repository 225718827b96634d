"""``cvhub map ...`` end to end through Typer, and the streaming statement API on a generated file."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

from typer.testing import CliRunner

from ledger.canonical import Party, Statement, StatementEntry
from mappings.camt import write_camt053
from mappings.cli import app
from mappings.statements import iter_statements

SAMPLES = Path(__file__).resolve().parent / "samples"
runner = CliRunner()


def test_map_statement_prints_canonical_json() -> None:
    r = runner.invoke(app, ["statement", str(SAMPLES / "camt" / "camt053_v08_cny_full.xml")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    (st,) = doc["statements"]
    assert st["closing_balance"] == "1049500.50" and st["currency"] == "CNY"
    assert st["entries"][0]["amount"] == "100000.50"


def test_map_statement_profile_and_rejects_exit_3() -> None:
    r = runner.invoke(app, ["statement", str(SAMPLES / "csv-cn-bank" / "cn_bank_gb18030.csv"),
                            "--profile", "csv-cn-bank"])
    assert r.exit_code == 3
    assert json.loads(r.stdout)["rejected"][0]["reason"] == "over_precise"


def test_map_statement_error_exit_2_names_file_line_field() -> None:
    r = runner.invoke(app, ["statement", str(SAMPLES / "mt940" / "mt940_err_balance.sta")])
    assert r.exit_code == 2
    err = json.loads(r.stderr.splitlines()[0])
    assert (err["code"], err["source"], err["line"], err["field"]) == (
        "balance_mismatch", "mt940_err_balance.sta", 14, "closing_balance")
    r = runner.invoke(app, ["statement", str(SAMPLES / "csv-generic" / "generic_utf8_bom.csv")])
    assert r.exit_code == 2 and "unknown_format" in r.stderr
    r = runner.invoke(app, ["statement", str(SAMPLES / "csv-generic" / "generic_utf8_bom.csv"),
                            "--profile", "nope"])
    assert r.exit_code == 2 and "unknown_profile" in r.stderr


def test_map_pain002() -> None:
    r = runner.invoke(app, ["pain002", str(SAMPLES / "pain002" / "pain002_v03_partial.xml")])
    assert r.exit_code == 0, r.output
    statuses = json.loads(r.stdout)["statuses"]
    assert [s["status"] for s in statuses] == ["PART", "PDNG", "ACSC", "RJCT", "PDNG"]
    r = runner.invoke(app, ["pain002", str(SAMPLES / "pain002" / "pain002_err_unknown_status.xml")])
    assert r.exit_code == 2 and "unknown_status" in r.stderr


def test_map_pain001(tmp_path: Path) -> None:
    doc = {"initiating_party": {"name": "核心企业", "uscc": "91110000100000001W"},
           "created_at": "2026-12-01T09:00:00+08:00",
           "instructions": [{"instruction_id": "CLR-1", "end_to_end_id": "E-1", "amount": "10.00",
                             "currency": "CNY", "requested_execution_date": "2026-12-01",
                             "debtor": {"name": "核心企业", "account": "6222020200001234567",
                                        "agent": "102100099996"},
                             "creditor": {"name": "供应商", "account": "6217000010001234567"}}]}
    f = tmp_path / "i.json"
    f.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    r1 = runner.invoke(app, ["pain001", str(f), "--version", "03"])
    r2 = runner.invoke(app, ["pain001", str(f), "--version", "03"])
    assert r1.exit_code == 0, r1.output
    assert r1.stdout_bytes == r2.stdout_bytes and b"pain.001.001.03" in r1.stdout_bytes
    doc["instructions"][0]["amount"] = 10.0  # type: ignore[index]
    f.write_text(json.dumps(doc), "utf-8")
    r = runner.invoke(app, ["pain001", str(f), "--version", "09"])
    assert r.exit_code == 2 and "invalid_amount" in r.stderr


def test_streaming_reads_entries_lazily_in_bounded_memory(tmp_path: Path) -> None:
    """5k entries (~4 MB) stream with a traced peak far below the file size."""
    n = 5_000
    entries = [StatementEntry(amount_minor=100 + i, currency="CNY", credit_debit="CRDT",
                              booking_date=date(2026, 1, 1), value_date=date(2026, 1, 1),
                              end_to_end_id=f"E{i}", remittance_info="电子债权凭证 " * 4,
                              counterparty=Party(name="供应商", account=f"6222{i:015d}"))
               for i in range(n)]
    total = sum(e.amount_minor for e in entries)
    st = Statement("camt.053.001.08", "S", "ACC", "CNY", 1, None, date(2026, 1, 1), date(2026, 1, 1),
                   0, total, ())
    path = tmp_path / "big.xml"
    with path.open("wb") as fh:
        write_camt053(fh, [st], message_id="M", created_at=datetime(2026, 1, 1, tzinfo=UTC), entries=entries)
    del entries
    size = path.stat().st_size
    tracemalloc.start()
    count = acc = 0
    with path.open("rb") as fh:
        for reader in iter_statements(fh, source="big.xml", last_sequences={}):
            assert reader.header.opening_balance_minor == 0
            for e in reader:
                count += 1
                acc += e.amount_minor
            assert reader.statement is not None and reader.statement.closing_balance_minor == total
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (count, acc) == (n, total)
    assert peak < size / 10, f"traced peak {peak} for a {size}-byte file"
