"""The daily finance package: files, XLSX contents, one-page PDF, manifest, totals vs the ledger."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from recon_world import DUE, OBLIGOR, ClearingWorld, entry, statement

from ledger.canonical import Party
from ledger.money import to_decimal_text
from ledger.recon.package import PackageOptions, build_packages, file_names, verify_manifest
from ledger.recon.service import run_statement

DAY = DUE + timedelta(days=1)


def _reconcile(world: ClearingWorld) -> int:
    """Run a day's statement; return the amount the ledger's open instructions went down by."""
    before = sum(i.amount_minor for i in world.ledger.open_instructions())
    st = statement([
        entry(30000, on=DAY, end_to_end_id=world.by_amount(30000).end_to_end_id,
              counterparty=Party(name="二级供应商", account="6222000000000003")),
        entry(70000, on=DAY, end_to_end_id=world.by_amount(70000).end_to_end_id),
        entry(25050, on=DAY, remittance_info="货款 no ref"),
        entry(9990, on=DAY, end_to_end_id=world.by_amount(9999).end_to_end_id),     # amount difference
        entry(12345, "CRDT", on=DAY, remittance_info="未知来款"),                       # unmatched line
    ], to_date=DAY)
    with world.ledger.session() as s:
        run_statement(s, st, ledger=world.ledger)
    return before - sum(i.amount_minor for i in world.ledger.open_instructions())


def _build(world: ClearingWorld, out: Path, **opts: object) -> list:
    with world.ledger.session() as s:
        return build_packages(s, DAY, out, ledger=world.ledger, options=PackageOptions(**opts))  # type: ignore[arg-type]


def test_package_files_manifest_and_totals_agree_with_the_ledger(world: ClearingWorld,
                                                                tmp_path: Path) -> None:
    settled = _reconcile(world)
    assert settled == 30000 + 70000 + 25050
    [res] = _build(world, tmp_path / "pkg")
    names = sorted(p.name for p in res.files)
    assert names == sorted(file_names(DAY))
    assert verify_manifest(res.directory) == []
    manifest = json.loads((res.directory / "manifest.json").read_text("utf-8"))
    assert manifest["totals"]["matched"]["by_kind"]["clearing"]["CNY"] == {
        "minor": settled, "text": to_decimal_text(settled, "CNY")}
    assert manifest["totals"]["matched"]["lines"] == 3
    assert manifest["totals"]["exceptions"]["by_code"] == {"AMOUNT_DIFF": 1, "UNMATCHED_LINE": 1}
    rows = {f["name"]: f["rows"] for f in manifest["files"]}
    assert rows[f"recon_{DAY}.csv"] == {"matched": 3, "exceptions": 2}

    # CSV: UTF-8 with BOM, amounts as exact decimal text summing to the ledger's figure
    raw = (res.directory / f"recon_{DAY}.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    recs = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    matched = [r for r in recs if r["record"] == "MATCHED"]
    assert sum(Decimal(r["amount"]) for r in matched) == Decimal(to_decimal_text(settled, "CNY"))
    codes = {r["rule_or_code"] for r in recs if r["record"] == "EXCEPTION"}
    assert codes == {"AMOUNT_DIFF", "UNMATCHED_LINE"}
    assert any(r["counterparty"].startswith("二级供应商") for r in matched)

    # a tampered file is caught by the manifest
    (res.directory / f"recon_{DAY}.csv").write_bytes(raw + b"x")
    assert verify_manifest(res.directory) == [f"recon_{DAY}.csv: size or SHA-256 differs from the manifest"]


def test_xlsx_sheets_frozen_headers_number_formats_totals(world: ClearingWorld, tmp_path: Path) -> None:
    settled = _reconcile(world)
    [res] = _build(world, tmp_path)
    wb = load_workbook(res.directory / f"recon_{DAY}.xlsx")
    assert wb.sheetnames == ["summary", "matched", "exceptions"]
    for name in wb.sheetnames:
        assert wb[name].freeze_panes == "A2"
    m = wb["matched"]
    header = [c.value for c in m[1]]
    assert header[:7] == ["account", "statement_id", "line_no", "value_date", "direction", "amount",
                          "currency"]
    amounts = [m.cell(r, 6) for r in range(2, m.max_row + 1)]
    assert len(amounts) == 3
    assert all(c.number_format == "#,##0.00" for c in amounts)
    assert all(m.cell(r, 4).number_format == "yyyy-mm-dd" for r in range(2, m.max_row + 1))
    assert sum(Decimal(str(c.value)) for c in amounts) == Decimal(settled) / 100
    x = wb["exceptions"]
    assert [x.cell(r, 1).value for r in range(2, x.max_row + 1)] == ["AMOUNT_DIFF", "UNMATCHED_LINE"]
    summary = {r[0].value: r[1].value for r in wb["summary"].iter_rows(min_row=2)}
    assert Decimal(str(summary["matched clearing"])) == Decimal(settled) / 100
    assert summary["exceptions raised"] == 2


def test_pdf_is_one_page_and_html_embeds_the_chart(world: ClearingWorld, tmp_path: Path) -> None:
    _reconcile(world)
    [res] = _build(world, tmp_path)
    pdf = (res.directory / f"recon_{DAY}_summary.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1
    page_tree = re.search(rb"/Count\s+(\d+)", pdf)
    assert page_tree is not None and page_tree.group(1) == b"1"
    text = (res.directory / f"recon_{DAY}_summary.html").read_text("utf-8")
    assert "Expected vs received" in text
    from lxml import etree

    svg = etree.fromstring(text[text.index("<svg"):text.index("</svg>") + 6].encode())   # well-formed
    labels = [t.text for t in svg.iter("{*}text")]
    assert "expected" in labels and "received" in labels and "12-16" in labels
    assert b"/Type /Font" in pdf or b"/Font" in pdf
    assert "AMOUNT_DIFF" in text and "UNMATCHED_LINE" in text


def test_same_data_gives_the_same_bytes(world: ClearingWorld, tmp_path: Path) -> None:
    _reconcile(world)
    [a] = _build(world, tmp_path / "a")
    time.sleep(1.1)                                         # a wall-clock stamp would now differ
    [b] = _build(world, tmp_path / "b")
    for pa, pb in zip(a.files, b.files, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    mtime = (a.directory / "manifest.json").stat().st_mtime_ns
    _build(world, tmp_path / "a")                           # rewrite in place: untouched
    assert (a.directory / "manifest.json").stat().st_mtime_ns == mtime


def test_gb18030_and_partitions(world: ClearingWorld, tmp_path: Path) -> None:
    _reconcile(world)
    [res] = _build(world, tmp_path / "gb", encoding="gb18030")
    raw = (res.directory / f"recon_{DAY}.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert "二级供应商" in raw.decode("gb18030")
    by_obligor = _build(world, tmp_path / "obl", by="obligor")
    assert sorted(r.directory.name for r in by_obligor) == sorted([OBLIGOR, "_unassigned"])
    by_account = _build(world, tmp_path / "acct", by="account")
    assert [r.directory.name for r in by_account] == ["6222000000000001"]
    assert by_account[0].totals["matched"]["amount"]["CNY"]["minor"] == 125050


@pytest.mark.postgres
def test_package_from_postgresql_matches_sqlite(pg_url: str, world: ClearingWorld, tmp_path: Path) -> None:
    from recon_world import build_world

    _reconcile(world)
    [lite] = _build(world, tmp_path / "lite")
    pg = build_world(pg_url)
    try:
        _reconcile(pg)
        [pgres] = _build(pg, tmp_path / "pg")
    finally:
        pg.ledger.close()
    for pa, pb in zip(lite.files, pgres.files, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
