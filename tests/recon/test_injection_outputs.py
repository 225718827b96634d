"""Issue #19, the other writers and the lossy corner: the package writers on hand-built data
(controls, bidi overrides, markup, negative amounts), the ERP GL export and the registry packet.

The corpus test (``test_injection.py``) covers statement -> recon -> package; these cover what no
statement can carry today (control characters that camt/XML cannot hold and that #23 will refuse
at the door) and the files written outside the recon package.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from spreadsheet import open_in_calc

from ledger.canonical import GlJournal, GlLine, GlPosting, Party, RegistrationRequest
from ledger.inert import formula_like, restore_csv_cell
from ledger.recon.package import (
    ExceptionRecord,
    MatchedRecord,
    PackageData,
    PackageOptions,
    write_package,
)

DAY = date(2026, 12, 16)
RLO = "\u202e"            # RIGHT-TO-LEFT OVERRIDE


def _data() -> PackageData:
    matched = MatchedRecord(
        account="6222000000000001", statement_id="S-1", line_no=1, value_date=DAY, direction="DBIT",
        amount_minor=-1250, currency="CNY", item_kind="clearing", item_id="CI-1", item_ref="E2E-1",
        voucher_no="V1", piece_no="V1-1", obligor_uscc=None, rule="ref_end_to_end_id", group_no=1,
        counterparty=f"ACME{RLO}txt.exe", bank_ref="-1+1", due_date=DAY, item_amount_minor=-1250)
    exc = ExceptionRecord(
        code="UNMATCHED_LINE", account="6222000000000001", statement_id="S-1", line_no=2, item_id=None,
        amount_minor=-99, currency="CNY", obligor_uscc=None, status="open",
        detail="<script>alert(1)</script> nothing fits", business_date=DAY, value_date=DAY,
        direction="CRDT", remittance_info="\x1b[31m=cmd|' /C calc'!A0\x07", counterparty="=1+1\x00")
    return PackageData(DAY, "all", None, matched=[matched], exceptions=[exc], open_exceptions=[exc],
                       daily={"CNY": [(DAY, 0, 0)]})


def test_controls_bidi_markup_and_negative_amounts(tmp_path: Path) -> None:
    res = write_package(_data(), tmp_path / "pkg", PackageOptions())
    d = tmp_path / "pkg"

    # XLSX opens (openpyxl refuses control characters outright: the package would not build)
    wb = load_workbook(d / f"recon_{DAY}.xlsx")
    x, m = wb["exceptions"], wb["matched"]
    head = [c.value for c in x[1]]
    row = {h: x.cell(2, i + 1) for i, h in enumerate(head)}
    assert row["remittance_info"].value == "[U+001B][31m=cmd|' /C calc'!A0[U+0007]"
    assert row["counterparty"].value == "=1+1[U+0000]" and row["counterparty"].data_type == "s"
    assert row["counterparty"].quotePrefix
    assert row["amount"].data_type == "n" and row["amount"].value == -0.99
    assert m.cell(2, 16).value == "ACME[U+202E]txt.exe"
    assert m.cell(2, 17).value == "-1+1" and m.cell(2, 17).quotePrefix
    assert m.cell(2, 6).data_type == "n"

    # CSV: negative amounts are bare numbers; text quoted, neutralised, controls visible
    raw = (d / f"recon_{DAY}.csv").read_text("utf-8-sig")
    assert ',-12.50,"CNY",' in raw and ',-0.99,"CNY",' in raw
    recs = list(csv.DictReader(io.StringIO(raw)))
    assert recs[0]["bank_ref"] == "'-1+1" and restore_csv_cell(recs[0]["bank_ref"]) == "-1+1"
    assert recs[1]["counterparty"] == "'=1+1[U+0000]"
    assert "\x1b" not in raw and "\x00" not in raw and RLO not in raw

    # HTML: markup escaped, controls visible; PDF built
    page = (d / f"recon_{DAY}_summary.html").read_text("utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert (d / f"recon_{DAY}_summary.pdf").read_bytes().startswith(b"%PDF-")

    # manifest: every value no file carries exactly, with its original; nothing invisible in it
    text = res.manifest.read_text("utf-8")
    assert RLO not in text and "\\u202e" in text
    inert = json.loads(text)["inert"]
    originals = {(a["record"], a["field"]): a["original"] for a in inert["altered_values"]}
    assert originals == {("matched", "counterparty"): f"ACME{RLO}txt.exe",
                         ("exception", "remittance_info"): "\x1b[31m=cmd|' /C calc'!A0\x07",
                         ("exception", "counterparty"): "=1+1\x00"}
    assert inert["formula_like_values"] == 2      # bank_ref "-1+1", counterparty "=1+1\x00"

    # Calc: the negative amounts are numbers, nothing is a formula
    calc = open_in_calc([d / f"recon_{DAY}.csv"], tmp_path)[f"recon_{DAY}.csv"]
    assert [c for c in calc if c.data_type == "f"] == []
    amounts = {c.coordinate: c.value for c in calc if c.coordinate[0] == "H" and c.coordinate != "H1"}
    assert amounts == {"H2": -12.5, "H3": -0.99}


# ---- the ERP GL export ---------------------------------------------------------------------

HOSTILE_KEY = "=HYPERLINK(\"http://127.0.0.1:9/x\",\"click\")"


def _journal() -> GlJournal:
    return GlJournal("GL-20261201", "1000", date(2026, 12, 1), (
        GlPosting("L1", "issuance", date(2026, 12, 1), f"issue {HOSTILE_KEY}", (
            GlLine("2202.01", 100_00, 0, "CNY", None, "@SUM(1+1)", "-1+1", "'quoted"),
            GlLine("2202.99", 0, 100_00, "CNY", None, "＝cmd|' /C calc'!A0", None, " =1+1"),
        )),
        GlPosting("L2", "other", date(2026, 12, 1), "=cmd|' /C calc'!A0", (
            GlLine("1002.01", 5_00, 0, "CNY", memo="x;=1+1"),
            GlLine("1002.02", 0, 5_00, "CNY", memo="\t=1+1"),
        )),
    ))


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_gl_export_is_inert_and_round_trips(encoding: str, tmp_path: Path) -> None:
    from mappings.gl import parse_gl_journal, render_gl_journal

    data = render_gl_journal(_journal(), encoding=encoding)  # type: ignore[arg-type]
    assert parse_gl_journal(data, source="gl.csv") == _journal()      # restored exactly
    rows = list(csv.reader(io.StringIO(data.decode(encoding))))
    cells = [c for r in rows[1:] for c in r]
    assert all(not formula_like(c) for c in cells if not c[:1].isdigit())
    assert f"'issue {HOSTILE_KEY}" not in cells and "'=cmd|' /C calc'!A0" in cells
    assert "''quoted" in cells and "'\t=1+1" in cells
    line = data.decode(encoding).splitlines()[1]
    assert ',100.00,"","CNY",' in line                              # amounts bare numbers
    if encoding != "utf-8":
        return                       # one Calc import is enough: the bytes differ only in encoding
    path = tmp_path / "gl.csv"
    path.write_bytes(data)
    calc = open_in_calc([path], tmp_path, csv_encoding=encoding)["gl.csv"]
    assert [c for c in calc if c.data_type == "f"] == []
    assert {c.value for c in calc if c.coordinate[0] in "JK" and c.coordinate[1:] != "1"} == {100, 5}


# ---- the registry packet -------------------------------------------------------------------

OBLIGOR, SUPPLIER, BANK = "91110000100000001W", "91440300MA5ABCDE1H", "91310000MA1FL7Q8XK"


def _request(**change: object) -> RegistrationRequest:
    base: dict[str, object] = dict(
        request_id="REG-1", registration_type="transfer",
        transferor=Party(name="=HYPERLINK(\"http://127.0.0.1:9/\")有限公司", uscc=SUPPLIER),
        transferee=Party(name="某银行保理中心", uscc=BANK),
        obligor=Party(name="中交核心企业有限公司", uscc=OBLIGOR),
        voucher_id="CV0001", piece_id="CV0001-P1", amount_minor=100_000_00, currency="CNY",
        maturity_date=date(2027, 3, 1), period_months=12)
    base.update(change)
    return RegistrationRequest(**base)  # type: ignore[arg-type]


def test_registry_packet_keeps_names_exact_and_refuses_disguised_text() -> None:
    from lxml import etree

    from mappings.errors import RenderError
    from mappings.registry import PACKET_NS, render_registration_packet

    name = "=HYPERLINK(\"http://127.0.0.1:9/\")有限公司"
    assert json.loads(render_registration_packet(_request()))["transferor"]["name"] == name
    x = etree.fromstring(render_registration_packet(_request(), format="xml"))
    assert x.findtext(f"{{{PACKET_NS}}}Transferor/{{{PACKET_NS}}}Name") == name
    for change, field in (
        ({"transferee": Party(name=f"某银行{RLO}心中理保", uscc=BANK)}, "transferee.name"),
        ({"description": "凭证\x1b[2J"}, "collateral.description"),
        ({"obligor": Party(name="中交\u2028核心", uscc=OBLIGOR)}, "obligor.name"),
    ):
        for fmt in ("json", "xml"):
            with pytest.raises(RenderError) as info:
                render_registration_packet(_request(**change), format=fmt)  # type: ignore[arg-type]
            assert info.value.field == field
