"""``cvhub recon run`` and ``cvhub recon report`` end to end on a real ledger database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from recon_world import DUE, ClearingWorld, entry, statement
from typer.testing import CliRunner

from cvhub.cli import app
from ledger.recon.statement_json import dump_statements, load_statements

DAY = DUE + timedelta(days=1)


def _statement_file(world: ClearingWorld, tmp_path: Path) -> Path:
    st = statement([entry(30000, on=DAY, end_to_end_id=world.by_amount(30000).end_to_end_id),
                    entry(25050, on=DAY, remittance_info="货款"),
                    entry(777, "CRDT", on=DAY)], to_date=DAY)
    path = tmp_path / "statement.json"
    path.write_text(dump_statements([st]), encoding="utf-8")
    assert load_statements(path.read_bytes()) == [st]          # the JSON round-trips exactly
    return path


def test_run_then_rerun_then_report(world: ClearingWorld, tmp_path: Path) -> None:
    runner = CliRunner()
    path = _statement_file(world, tmp_path)
    res = runner.invoke(app, ["recon", "run", "--statement", str(path), "--db", world.url])
    assert res.exit_code == 0, res.output
    assert "lines=3 matched=2 exceptions=1 settled=2" in res.output
    assert "UNMATCHED_LINE=1" in res.output
    res = runner.invoke(app, ["recon", "run", "--statement", str(path), "--db", world.url])
    assert res.exit_code == 0 and "(already reconciled)" in res.output

    out = tmp_path / "pkg"
    res = runner.invoke(app, ["recon", "report", "--date", DAY.isoformat(), "--out", str(out),
                              "--db", world.url])
    assert res.exit_code == 0, res.output
    printed = [Path(p) for p in res.output.split()]
    assert {p.name for p in printed} == {f"recon_{DAY}.csv", f"recon_{DAY}.xlsx", f"recon_{DAY}_summary.html",
                                        f"recon_{DAY}_summary.pdf", "manifest.json"}
    assert all(p.exists() for p in printed)
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["totals"]["matched"]["amount"]["CNY"]["text"] == "550.50"


def test_bad_input_is_one_line_and_nonzero(world: ClearingWorld, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"statement_id": "S", "account": "A", "currency": "CNY", '
                   '"entries": [{"amount_minor": "12.5", "credit_debit": "CRDT"}]}')
    res = CliRunner().invoke(app, ["recon", "run", "--statement", str(bad), "--db", world.url])
    assert res.exit_code == 1
    assert "bad.json: statement S entry 1.amount_minor: expected an integer" in res.output
    raw = tmp_path / "stmt.sta"
    raw.write_text(":20:X\n")
    res = CliRunner().invoke(app, ["recon", "run", "--statement", str(raw), "--db", world.url])
    assert res.exit_code == 1 and "stmt.sta" in res.output


def test_mappings_json_shape_and_raw_camt_file(world: ClearingWorld, tmp_path: Path) -> None:
    """What `cvhub map statement` prints (decimal amounts, {"statements": ...}) and a raw camt.053
    (parsed by the mappings package, imported only inside the command) both reconcile."""
    from mappings.camt import render_camt053
    from mappings.canonical_json import to_json

    ins = world.by_amount(9999)
    st = statement([entry(9999, on=DAY, end_to_end_id=ins.end_to_end_id)], sid="CAMT-1", to_date=DAY)
    st = type(st)(**{**{f: getattr(st, f) for f in st.__dataclass_fields__},
                     "opening_balance_minor": 100000, "closing_balance_minor": 100000 - 9999})
    doc = {"statements": [to_json(st)], "rejected": []}
    assert doc["statements"][0]["entries"][0]["amount"] == "99.99"
    assert load_statements(json.dumps(doc)) == [st]

    raw = tmp_path / "camt053.xml"
    raw.write_bytes(render_camt053(st))
    res = CliRunner().invoke(app, ["recon", "run", "--statement", str(raw), "--db", world.url])
    assert res.exit_code == 0, res.output
    assert "matched=1 exceptions=0 settled=1" in res.output
    assert ins.instruction_id not in {i.instruction_id for i in world.ledger.open_instructions()}
