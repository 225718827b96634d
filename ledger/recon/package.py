"""The daily finance package: reconciled CSV, XLSX, a one-page summary (HTML + PDF) and a manifest.

For one business date (optionally split per account or per obligor) it reads the persisted
matches and exceptions and writes ``recon_<date>.csv`` (UTF-8 with BOM, or GB18030),
``recon_<date>.xlsx`` (sheets summary / matched / exceptions), ``recon_<date>_summary.html`` (chart
as inline SVG) and ``recon_<date>_summary.pdf`` (one A4 page, the same chart drawn with
reportlab.graphics) and ``manifest.json`` (every file with SHA-256, bytes, row counts, totals).

Bytes are deterministic for the same data: timestamps come from the business date, the XLSX zip
entries carry fixed times, the PDF is written with ``invariant=1``. Amounts are integer minor
units turned into bare decimal numbers (CSV) or ``Decimal`` cells (XLSX); never ``float``.
Every text value (statement remittance, counterparty names, ids: outside data) goes through
``ledger.inert`` on its way into a file: CSV cells neutralised and quoted, XLSX text always string
cells, HTML escaped, PDF controls made visible; the manifest lists what changed and where the
exact values come from. No output cell is ever a formula.
It only reads the database; it must never write to it, and never import connectors or mappings.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import inert
from ledger.models import InstructionRow
from ledger.money import exponent, to_decimal_text
from ledger.recon.model import NEXT_ACTION, normalise_account
from ledger.recon.models import ExceptionRow, ExpectedRow, LineRow, MatchRow, StatementRow
from ledger.recon.service import LedgerPort

Encoding = Literal["utf-8-sig", "gb18030"]
Partition = Literal["all", "account", "obligor"]
UNASSIGNED = "_unassigned"

CSV_COLUMNS = (
    "record", "business_date", "account", "statement_id", "line_no", "value_date", "direction", "amount",
    "currency", "item_kind", "item_id", "item_ref", "voucher_no", "piece_no", "obligor_uscc",
    "rule_or_code", "group_no", "counterparty", "bank_ref", "status", "detail", "next_action",
)
MATCHED_COLUMNS = (
    "account", "statement_id", "line_no", "value_date", "direction", "amount", "currency", "item_kind",
    "item_id", "item_ref", "voucher_no", "piece_no", "obligor_uscc", "rule", "group_no", "counterparty",
    "bank_ref",
)
EXCEPTION_COLUMNS = (
    "code", "account", "statement_id", "line_no", "item_id", "amount", "currency", "obligor_uscc",
    "status", "value_date", "direction", "remittance_info", "counterparty", "detail", "next_action",
)


@dataclass(frozen=True, slots=True)
class PackageOptions:
    """encoding: CSV encoding; by: one package, or one per account / per obligor; chart_days: days
    of expected-vs-received history on the chart (ending on the business date)."""

    encoding: Encoding = "utf-8-sig"
    by: Partition = "all"
    chart_days: int = 7
    max_exceptions_on_page: int = 14


@dataclass(slots=True)
class MatchedRecord:
    account: str
    statement_id: str
    line_no: int
    value_date: date | None
    direction: str
    amount_minor: int
    currency: str
    item_kind: str
    item_id: str
    item_ref: str | None
    voucher_no: str | None
    piece_no: str | None
    obligor_uscc: str | None
    rule: str
    group_no: int
    counterparty: str | None
    bank_ref: str | None
    due_date: date
    item_amount_minor: int


@dataclass(slots=True)
class ExceptionRecord:
    code: str
    account: str
    statement_id: str | None
    line_no: int | None
    item_id: str | None
    amount_minor: int
    currency: str
    obligor_uscc: str | None
    status: str
    detail: str
    business_date: date
    value_date: date | None = None          # the line's, for line exceptions
    direction: str | None = None
    remittance_info: str | None = None
    counterparty: str | None = None


@dataclass(slots=True)
class PackageData:
    business_date: date
    partition_by: Partition
    partition: str | None
    matched: list[MatchedRecord] = field(default_factory=list)
    exceptions: list[ExceptionRecord] = field(default_factory=list)
    open_exceptions: list[ExceptionRecord] = field(default_factory=list)   # as of the date, any day
    daily: dict[str, list[tuple[date, int, int]]] = field(default_factory=dict)  # ccy -> (day, exp, rcv)
    sources: list[dict[str, str]] = field(default_factory=list)   # the statements the rows come from


@dataclass(frozen=True, slots=True)
class PackageResult:
    directory: Path
    files: tuple[Path, ...]
    manifest: Path
    totals: dict[str, Any]


# ---- reading ------------------------------------------------------------------------------

def _partition_of(by: Partition, account: str, obligor: str | None) -> str | None:
    if by == "all":
        return None
    if by == "account":
        return account
    return obligor or UNASSIGNED


def load_package_data(session: Session, business_date: date, *, options: PackageOptions,
                      ledger: LedgerPort | None = None) -> list[PackageData]:
    """Everything the package of ``business_date`` shows, grouped by partition (sorted)."""
    m, ln, st = MatchRow, LineRow, StatementRow
    parts: dict[str | None, PackageData] = {}

    def part(account: str, obligor: str | None) -> PackageData:
        key = _partition_of(options.by, account, obligor)
        if key not in parts:
            parts[key] = PackageData(business_date, options.by, key)
        return parts[key]

    e, ins = ExpectedRow, InstructionRow
    q = (select(st.account, st.statement_id, m.line_no, m.value_date, m.credit_debit, m.amount_minor,
                func.coalesce(e.currency, ins.currency), m.item_kind, m.item_id,
                func.coalesce(e.end_to_end_id, e.serial_no, ins.end_to_end_id),
                func.coalesce(e.voucher_no, ins.voucher_no), func.coalesce(e.piece_no, ins.piece_no),
                func.coalesce(e.obligor_uscc, ins.obligor_uscc), m.rule, m.group_no, m.counterparty,
                m.bank_ref, func.coalesce(e.due_date, ins.due_date),
                func.coalesce(e.amount_minor, ins.amount_minor))
         .join(st, st.id == m.statement_pk)
         .outerjoin(e, e.item_id == m.item_id)
         .outerjoin(ins, ins.instruction_id == m.item_id)
         .where(st.business_date == business_date)
         .order_by(st.account, st.statement_id, m.line_no, m.item_id))
    for row in session.execute(q):
        rec = MatchedRecord(*tuple(row))
        if isinstance(rec.value_date, str):   # coalesce/raw SQLite values come back as text
            rec.value_date = date.fromisoformat(rec.value_date)
        if isinstance(rec.due_date, str):
            rec.due_date = date.fromisoformat(rec.due_date)
        part(rec.account, rec.obligor_uscc).matched.append(rec)

    x = ExceptionRow
    stmt_ids = dict(session.execute(select(st.id, st.statement_id)).all())
    q2 = (select(x.code, x.account, x.statement_pk, x.line_no, x.item_id, x.amount_minor, x.currency,
                 x.obligor_uscc, x.status, x.detail, x.business_date, ln.value_date, ln.credit_debit,
                 ln.remittance_info, ln.counterparty)
          .outerjoin(ln, (ln.statement_pk == x.statement_pk) & (ln.line_no == x.line_no))
          .where((x.business_date == business_date)
                 | ((x.business_date < business_date) & (x.status == "open")))
          .order_by(x.business_date, x.code, x.account, x.statement_pk, x.line_no, x.item_id))
    for (code, acct, spk, line_no, item_id, amt, ccy, obl, status, detail, bdate, vdate, cd, rem,
         cp) in session.execute(q2):
        rec2 = ExceptionRecord(code, acct, stmt_ids.get(spk) if spk is not None else None, line_no, item_id,
                               amt, ccy, obl, status, detail, bdate, vdate, cd, rem, cp)
        p = part(acct, obl)
        if bdate == business_date:
            p.exceptions.append(rec2)
        if status == "open":
            p.open_exceptions.append(rec2)

    if not parts:
        parts[None if options.by == "all" else UNASSIGNED] = PackageData(
            business_date, options.by, None if options.by == "all" else UNASSIGNED)
    _daily(session, business_date, options, parts, ledger)
    _sources(session, parts)
    return [parts[k] for k in sorted(parts, key=lambda k: k or "")]


def _sources(session: Session, parts: dict[str | None, PackageData]) -> None:
    """Per partition, the statements its rows come from (key, format, content SHA-256): where the
    exact text of every line is kept (``recon_lines`` / ``recon_matches``, and the raw file in the
    archive under the statements flow)."""
    st = StatementRow
    wanted = {(r.account, r.statement_id) for p in parts.values() for r in p.matched}
    wanted |= {(x.account, x.statement_id) for p in parts.values()
               for x in (*p.exceptions, *p.open_exceptions) if x.statement_id is not None}
    ids = sorted({sid for _, sid in wanted})
    found: dict[tuple[str, str], dict[str, str]] = {}
    for i in range(0, len(ids), 500):
        for acct, sid, key, fmt, sha in session.execute(
                select(st.account, st.statement_id, st.statement_key, st.source_format, st.content_sha256)
                .where(st.statement_id.in_(ids[i:i + 500]))):
            if (acct, sid) in wanted:
                found[(acct, sid)] = {"statement_key": key, "source_format": fmt, "content_sha256": sha}
    for pdata in parts.values():
        mine = {(r.account, r.statement_id) for r in pdata.matched}
        mine |= {(x.account, x.statement_id) for x in (*pdata.exceptions, *pdata.open_exceptions)
                 if x.statement_id is not None}
        pdata.sources = [found[k] for k in sorted(mine) if k in found]


def _daily(session: Session, business_date: date, options: PackageOptions,
           parts: dict[str | None, PackageData], ledger: LedgerPort | None) -> None:
    """Expected (by due date) vs received (by business date) per day, per partition and currency."""
    first = business_date - timedelta(days=options.chart_days - 1)
    days = [first + timedelta(days=i) for i in range(options.chart_days)]
    exp: dict[tuple[str | None, str, date], int] = defaultdict(int)
    rcv: dict[tuple[str | None, str, date], int] = defaultdict(int)
    m, st, e, ins = MatchRow, StatementRow, ExpectedRow, InstructionRow
    # received: what was matched on statements of each business day in the range
    for acct, obl, ccy, bdate, amt in session.execute(
            select(st.account, func.coalesce(e.obligor_uscc, ins.obligor_uscc),
                   func.coalesce(e.currency, ins.currency), st.business_date, m.amount_minor)
            .join(st, st.id == m.statement_pk)
            .outerjoin(e, e.item_id == m.item_id)
            .outerjoin(ins, ins.instruction_id == m.item_id)
            .where(st.business_date >= first, st.business_date <= business_date)):
        rcv[(_partition_of(options.by, acct, obl), ccy, bdate)] += amt
    # expected: every item due in the range, matched or not (registered items and the ledger's
    # clearing instructions, superseded re-instructions excepted)
    for r_acct, r_obl, r_ccy, r_due, r_amt in session.execute(
            select(e.account, e.obligor_uscc, e.currency, e.due_date, e.amount_minor)
            .where(e.due_date >= first, e.due_date <= business_date)):
        exp[(_partition_of(options.by, r_acct, r_obl), r_ccy, r_due)] += r_amt
    for acct, obl, ccy, due, amt in session.execute(
            select(ins.payer_account, ins.obligor_uscc, ins.currency, ins.due_date, ins.amount_minor)
            .where(ins.due_date >= first, ins.due_date <= business_date, ins.status != "superseded")):
        exp[(_partition_of(options.by, normalise_account(acct), obl), ccy, due)] += amt
    currencies: dict[str | None, set[str]] = defaultdict(set)
    for p, ccy, _ in list(exp) + list(rcv):
        currencies[p].add(ccy)
    for key, pdata in parts.items():
        ccys = currencies.get(key) or {r.currency for r in pdata.matched} or {"CNY"}
        pdata.daily = {c: [(d, exp.get((key, c, d), 0), rcv.get((key, c, d), 0)) for d in days]
                       for c in sorted(ccys)}


# ---- totals -------------------------------------------------------------------------------

def _money(minor: int, ccy: str) -> str:
    return to_decimal_text(minor, ccy) if ccy else str(minor)


def package_totals(data: PackageData) -> dict[str, Any]:
    """Counts and amounts (decimal text and minor units) per currency, kind, rule and code."""
    by_ccy: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    by_rule: Counter[str] = Counter()
    for r in data.matched:
        by_ccy[r.currency] += r.amount_minor
        by_kind[r.item_kind][r.currency] += r.amount_minor
        by_rule[r.rule] += 1
    lines = {(r.account, r.statement_id, r.line_no) for r in data.matched}
    exc_ccy: Counter[str] = Counter()
    for x in data.exceptions:
        exc_ccy[x.currency] += x.amount_minor
    return {
        "matched": {
            "rows": len(data.matched),
            "lines": len(lines),
            "items": len({r.item_id for r in data.matched}),
            "amount": {c: {"text": _money(v, c), "minor": v} for c, v in sorted(by_ccy.items())},
            "by_kind": {k: {c: {"text": _money(v, c), "minor": v} for c, v in sorted(cs.items())}
                        for k, cs in sorted(by_kind.items())},
            "by_rule": dict(sorted(by_rule.items())),
        },
        "exceptions": {
            "rows": len(data.exceptions),
            "open": sum(1 for x in data.exceptions if x.status == "open"),
            "open_all_days": len(data.open_exceptions),
            "by_code": dict(sorted(Counter(x.code for x in data.exceptions).items())),
            "amount": {c: {"text": _money(v, c), "minor": v} for c, v in sorted(exc_ccy.items())},
        },
    }


# ---- writers ------------------------------------------------------------------------------

def _d(v: date | None) -> str:
    return v.isoformat() if v else ""


def render_csv(data: PackageData, encoding: Encoding) -> bytes:
    """Every text cell quoted and neutralised (``ledger.inert.csv_row``); amounts, line and group
    numbers bare numbers."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    w.writerow(CSV_COLUMNS)
    bd = data.business_date
    row = inert.csv_row
    for r in data.matched:
        w.writerow(row(("MATCHED", bd, r.account, r.statement_id, r.line_no, r.value_date, r.direction,
                        _dec(r.amount_minor, r.currency), r.currency, r.item_kind, r.item_id, r.item_ref,
                        r.voucher_no, r.piece_no, r.obligor_uscc, r.rule, r.group_no, r.counterparty,
                        r.bank_ref, "matched", "", "")))
    for x in data.exceptions:
        detail = f"{x.detail}; remittance: {x.remittance_info}" if x.remittance_info else x.detail
        w.writerow(row(("EXCEPTION", bd, x.account, x.statement_id, x.line_no, x.value_date, x.direction,
                        _dec(x.amount_minor, x.currency), x.currency, "", x.item_id, "", "", "",
                        x.obligor_uscc, x.code, None, x.counterparty, "", x.status, detail,
                        NEXT_ACTION[x.code])))
    try:
        return buf.getvalue().encode(encoding)
    except UnicodeEncodeError as e:
        raise ValueError(f"recon CSV: text not representable in {encoding}: {e}") from e


_MODIFIED_RE = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _fixed_zip(raw: bytes, when: date) -> bytes:
    """Rewrite a zip with fixed entry times and attributes, and the document's modified time set
    to the business date (openpyxl stamps the wall clock into both on save)."""
    src = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    stamp = f"{when.isoformat()}T00:00:00Z".encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(when.year, when.month, when.day, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _MODIFIED_RE.sub(lambda m: m.group(1) + stamp + m.group(2), content)
            dst.writestr(zi, content)
    return out.getvalue()


def _amount_format(ccy: str) -> str:
    exp = exponent(ccy) if ccy else 2
    return "#,##0" if exp == 0 else "#,##0." + "0" * exp


def _dec(minor: int, ccy: str) -> Decimal:
    return Decimal(_money(minor, ccy))


def _xlsx_row(ws: Any, values: Sequence[Any]) -> list[Any]:
    """``values`` for ``Worksheet.append`` with every text as a string cell (never a formula,
    quote-prefixed when it looks like one); numbers, Decimals and dates as they are."""
    from openpyxl.cell.cell import Cell

    out: list[Any] = []
    for v in values:
        if isinstance(v, str):
            text, prefix = inert.xlsx_text(v)
            cell = Cell(ws, value=text)
            cell.data_type = "s"          # openpyxl would store a leading "=" as a formula
            if prefix:
                cell.quotePrefix = True   # Excel keeps it text even when the cell is edited
            out.append(cell)
        else:
            out.append(v)
    return out


def render_xlsx(data: PackageData, totals: dict[str, Any]) -> bytes:
    """The workbook; every text cell goes through ``_xlsx_row`` (there are no formulas at all)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDE4EE")
    # openpyxl keeps naive document times; this is the business date, not a clock read
    stamp = datetime(data.business_date.year, data.business_date.month, data.business_date.day)  # noqa: DTZ001
    wb = Workbook()
    wb.properties.creator = "cvhub"
    wb.properties.lastModifiedBy = "cvhub"
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.title = f"Reconciliation {data.business_date.isoformat()}"

    ws = wb.active
    assert ws is not None
    ws.title = "summary"
    ws.append(_xlsx_row(ws, ("item", "value", "currency")))
    ws.append(_xlsx_row(ws, ("business date", data.business_date, "")))
    ws["B2"].number_format = "yyyy-mm-dd"
    ws.append(_xlsx_row(ws, ("partition", f"{data.partition_by}: {data.partition or 'all'}", "")))
    ws.append(_xlsx_row(ws, ("matched rows", totals["matched"]["rows"], "")))
    ws.append(_xlsx_row(ws, ("matched statement lines", totals["matched"]["lines"], "")))
    for ccy, v in totals["matched"]["amount"].items():
        ws.append(_xlsx_row(ws, ("matched amount", _dec(v["minor"], ccy), ccy)))
        ws.cell(ws.max_row, 2).number_format = _amount_format(ccy)
    for kind, cs in totals["matched"]["by_kind"].items():
        for ccy, v in cs.items():
            ws.append(_xlsx_row(ws, (f"matched {kind}", _dec(v["minor"], ccy), ccy)))
            ws.cell(ws.max_row, 2).number_format = _amount_format(ccy)
    ws.append(_xlsx_row(ws, ("exceptions raised", totals["exceptions"]["rows"], "")))
    for code, n in totals["exceptions"]["by_code"].items():
        ws.append(_xlsx_row(ws, (f"exceptions {code}", n, "")))
    ws.append(_xlsx_row(ws, ("open exceptions (all days)", totals["exceptions"]["open_all_days"], "")))
    for ccy, series in data.daily.items():
        for day, exp_minor, rcv_minor in series:
            ws.append(_xlsx_row(ws, (f"expected {day.isoformat()}", _dec(exp_minor, ccy), ccy)))
            ws.cell(ws.max_row, 2).number_format = _amount_format(ccy)
            ws.append(_xlsx_row(ws, (f"received {day.isoformat()}", _dec(rcv_minor, ccy), ccy)))
            ws.cell(ws.max_row, 2).number_format = _amount_format(ccy)
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 22
    ws.column_dimensions["C"].width = 10

    # Row numbers are counted here: ``Worksheet.max_row`` scans every cell, so reading it once per
    # appended row made this sheet O(n²) (100k matches never finished). ``append`` always writes
    # the next row, so the counter equals what ``max_row`` returned.
    formats: dict[str, str] = {}

    def amount_format(ccy: str) -> str:
        if ccy not in formats:
            formats[ccy] = _amount_format(ccy)
        return formats[ccy]

    wm = wb.create_sheet("matched")
    wm.append(_xlsx_row(wm, MATCHED_COLUMNS))
    row = 1
    for r in data.matched:
        wm.append(_xlsx_row(wm, (r.account, r.statement_id, r.line_no, r.value_date, r.direction,
                                 _dec(r.amount_minor, r.currency), r.currency, r.item_kind, r.item_id,
                                 r.item_ref, r.voucher_no, r.piece_no, r.obligor_uscc, r.rule, r.group_no,
                                 r.counterparty, r.bank_ref)))
        row += 1
        wm.cell(row, 4).number_format = "yyyy-mm-dd"
        wm.cell(row, 6).number_format = amount_format(r.currency)

    wx = wb.create_sheet("exceptions")
    wx.append(_xlsx_row(wx, EXCEPTION_COLUMNS))
    row = 1
    for x in data.exceptions:
        wx.append(_xlsx_row(wx, (x.code, x.account, x.statement_id, x.line_no, x.item_id,
                                 _dec(x.amount_minor, x.currency), x.currency, x.obligor_uscc, x.status,
                                 x.value_date, x.direction, x.remittance_info, x.counterparty, x.detail,
                                 NEXT_ACTION[x.code])))
        row += 1
        wx.cell(row, 6).number_format = amount_format(x.currency or "CNY")
        wx.cell(row, 10).number_format = "yyyy-mm-dd"

    widths = {"account": 24, "statement_id": 22, "item_id": 24, "item_ref": 24, "detail": 48,
              "next_action": 60, "counterparty": 36, "rule": 24, "amount": 18, "value_date": 12}
    for sheet, cols in ((wm, MATCHED_COLUMNS), (wx, EXCEPTION_COLUMNS)):
        for i, name in enumerate(cols, start=1):
            sheet.cell(1, i).font = bold
            sheet.cell(1, i).fill = head_fill
            sheet.cell(1, i).alignment = Alignment(horizontal="center")
            letter = sheet.cell(1, i).column_letter
            sheet.column_dimensions[letter].width = widths.get(name, 14)
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = f"A1:{sheet.cell(1, len(cols)).column_letter}{max(sheet.max_row, 1)}"
    for i in range(1, 4):
        ws.cell(1, i).font = bold
        ws.cell(1, i).fill = head_fill
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip(buf.getvalue(), data.business_date)


def chart_drawing(data: PackageData, width: float = 480, height: float = 190) -> Any:
    """Expected vs received per day (grouped bars, major units) as a reportlab Drawing."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.legends import Legend
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors

    ccy = _chart_currency(data)
    series = data.daily.get(ccy, [])
    scale = 10 ** exponent(ccy)
    expected = [e // scale for _, e, _ in series] or [0]
    received = [r // scale for _, _, r in series] or [0]
    d = Drawing(width, height)
    d.add(String(0, height - 12, f"Expected vs received per day ({ccy}, whole units)",
                 fontName="Helvetica-Bold", fontSize=10))
    bc = VerticalBarChart()
    bc.x, bc.y = 50, 30
    bc.width, bc.height = width - 160, height - 60
    bc.data = [expected, received]
    bc.categoryAxis.categoryNames = [d0.strftime("%m-%d") for d0, _, _ in series] or [""]
    bc.categoryAxis.labels.fontSize = 7
    bc.valueAxis.labels.fontSize = 7
    bc.valueAxis.valueMin = 0
    top = max([*expected, *received, 1])
    bc.valueAxis.valueMax = top + max(1, top // 10)
    bc.valueAxis.valueStep = max(1, (bc.valueAxis.valueMax // 5) or 1)
    bc.bars[0].fillColor = colors.HexColor("#8aa4c8")
    bc.bars[1].fillColor = colors.HexColor("#2e7d32")
    bc.barSpacing = 1
    bc.groupSpacing = 6
    d.add(bc)
    lg = Legend()
    lg.x, lg.y = width - 100, height - 40
    lg.fontSize = 8
    lg.colorNamePairs = [(colors.HexColor("#8aa4c8"), "expected"), (colors.HexColor("#2e7d32"), "received")]
    d.add(lg)
    return d


def _chart_currency(data: PackageData) -> str:
    if not data.daily:
        return "CNY"
    return max(data.daily, key=lambda c: (sum(e + r for _, e, r in data.daily[c]), c == "CNY", c))


def render_svg(data: PackageData) -> str:
    from reportlab.graphics import renderSVG

    svg: str = renderSVG.drawToString(chart_drawing(data))
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _title(data: PackageData) -> str:
    part = f" — {data.partition_by} {data.partition}" if data.partition else ""
    return f"cvhub reconciliation {data.business_date.isoformat()}{part}"


def _summary_rows(totals: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("Matched statement lines", str(totals["matched"]["lines"])),
            ("Matched items", str(totals["matched"]["items"]))]
    for ccy, v in totals["matched"]["amount"].items():
        rows.append((f"Matched amount {ccy}", v["text"]))
    for kind, cs in totals["matched"]["by_kind"].items():
        for ccy, v in cs.items():
            rows.append((f"  of which {kind} {ccy}", v["text"]))
    rows.append(("Exceptions raised today", str(totals["exceptions"]["rows"])))
    for code, n in totals["exceptions"]["by_code"].items():
        rows.append((f"  {code}", str(n)))
    rows.append(("Open exceptions (all days)", str(totals["exceptions"]["open_all_days"])))
    return rows


def render_html(data: PackageData, totals: dict[str, Any], options: PackageOptions) -> bytes:
    """Every text through ``ledger.inert.html_text`` (escaped, controls visible); no scripts,
    no links, the chart inline."""
    esc = inert.html_text
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(_title(data))}</title>",
        "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#dde4ee}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}</style></head><body>",
        f"<h1>{esc(_title(data))}</h1>", "<h2>Summary</h2><table>",
    ]
    parts += [f'<tr><td>{esc(k)}</td><td class="n">{esc(v)}</td></tr>' for k, v in _summary_rows(totals)]
    parts += ["</table>", "<h2>Expected vs received</h2>", render_svg(data), "<h2>Open exceptions</h2>"]
    opn = data.open_exceptions
    if not opn:
        parts.append("<p>None.</p>")
    else:
        parts.append("<table><tr><th>since</th><th>code</th><th>account</th><th>line / item</th>"
                     "<th>amount</th><th>detail</th><th>next action</th></tr>")
        for x in opn[:200]:
            where = f"{x.statement_id}#{x.line_no}" if x.line_no else (x.item_id or "")
            parts.append(
                f"<tr><td>{esc(x.business_date.isoformat())}</td><td>{esc(x.code)}</td><td>{esc(x.account)}</td>"
                f"<td>{esc(where)}</td><td class=\"n\">{esc(_money(x.amount_minor, x.currency))} "
                f"{esc(x.currency)}</td><td>{esc(x.detail)}</td><td>{esc(NEXT_ACTION[x.code])}</td></tr>")
        parts.append("</table>")
        if len(opn) > 200:
            parts.append(f"<p>… and {len(opn) - 200} more in "
                         f"recon_{data.business_date.isoformat()}.xlsx.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts).encode("utf-8")


def render_pdf(data: PackageData, totals: dict[str, Any], options: PackageOptions) -> bytes:
    """One A4 page: title, summary table, chart, the first open exceptions (the rest counted)."""
    from reportlab.graphics import renderPDF
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))   # CJK names without a font file
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    text = inert.pdf_text
    c.setTitle(text(_title(data)))
    c.setAuthor("cvhub")
    c.setCreator("cvhub")
    y = A4[1] - 50
    c.setFont("Helvetica-Bold", 14)
    c.drawString(40, y, text(_title(data).replace("—", "-")))
    y -= 24
    c.setFont("Helvetica", 9)
    rows = _summary_rows(totals)
    for k, v in rows[:22]:
        c.drawString(50, y, text(k))
        c.drawRightString(330, y, text(v))
        y -= 12
    y -= 8
    drawing = chart_drawing(data)
    renderPDF.draw(drawing, c, 40, y - drawing.height)
    y -= drawing.height + 24
    c.setFont("Helvetica-Bold", 11)
    c.drawString(40, y, f"Open exceptions ({len(data.open_exceptions)})")
    y -= 16
    c.setFont("STSong-Light", 8)
    shown = 0
    for x in data.open_exceptions[: options.max_exceptions_on_page]:
        if y < 60:
            break
        where = f"{x.statement_id}#{x.line_no}" if x.line_no else (x.item_id or "")
        c.drawString(40, y, text(f"{x.business_date.isoformat()}  {x.code}"))
        c.drawString(190, y, text(where)[:40])
        c.drawRightString(440, y, text(f"{_money(x.amount_minor, x.currency)} {x.currency}"))
        c.drawString(450, y, text(x.detail)[:28])
        y -= 11
        shown += 1
    if len(data.open_exceptions) > shown:
        c.drawString(40, y - 4, f"... and {len(data.open_exceptions) - shown} more: see the exceptions "
                                f"sheet of recon_{data.business_date.isoformat()}.xlsx")
    c.setFont("Helvetica", 7)
    c.drawString(40, 30, "Amounts exact to the minor unit; files and SHA-256 listed in manifest.json.")
    c.showPage()
    c.save()
    return buf.getvalue()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


_MATCHED_TEXT = ("account", "statement_id", "direction", "currency", "item_kind", "item_id", "item_ref",
                 "voucher_no", "piece_no", "obligor_uscc", "rule", "counterparty", "bank_ref")
_EXCEPTION_TEXT = ("code", "account", "statement_id", "item_id", "currency", "obligor_uscc", "status",
                   "detail", "direction", "remittance_info", "counterparty")


def inert_report(data: PackageData) -> dict[str, Any]:
    """The manifest's ``inert`` section: how many text values looked like formulas (neutralised
    in the CSV, quote-prefixed in the XLSX) and every value the files could not carry exactly
    (controls shown as ``[U+XXXX]``) with its original and where it sits."""
    formula_like = 0
    altered: list[dict[str, Any]] = []
    records: list[tuple[str, Any, tuple[str, ...]]] = [("matched", r, _MATCHED_TEXT) for r in data.matched]
    seen: set[tuple[Any, ...]] = set()
    for x in (*data.exceptions, *data.open_exceptions):    # an exception raised today is also open
        key = (x.code, x.account, x.statement_id, x.line_no, x.item_id, x.business_date)
        if key not in seen:
            seen.add(key)
            records.append(("exception", x, _EXCEPTION_TEXT))
    for kind, rec, names in records:
        for name in names:
            value = getattr(rec, name)
            if not value:
                continue
            formula_like += inert.formula_like(value)
            if inert.has_unsafe_chars(value):
                altered.append({"record": kind, "statement_id": rec.statement_id, "line_no": rec.line_no,
                                "item_id": rec.item_id, "field": name, "original": value,
                                "written": inert.visible_text(value)})
    return {"rule": inert.RULE, "formula_like_values": formula_like, "altered_values": altered,
            "restore": "CSV: drop one leading apostrophe from a text cell that has one; XLSX: cell values "
                       "are the text itself; altered_values: the originals of what no file carries exactly"}


def write_package(data: PackageData, out_dir: Path, options: PackageOptions) -> PackageResult:
    """Render every file of one partition into ``out_dir`` and the manifest last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    d = data.business_date.isoformat()
    totals = package_totals(data)
    rows = {"matched": len(data.matched), "exceptions": len(data.exceptions)}
    files: list[tuple[str, bytes, str, dict[str, int]]] = [
        (f"recon_{d}.csv", render_csv(data, options.encoding), f"text/csv; charset={options.encoding}", rows),
        (f"recon_{d}.xlsx", render_xlsx(data, totals),
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", rows),
        (f"recon_{d}_summary.html", render_html(data, totals, options), "text/html; charset=utf-8",
         {"open_exceptions": len(data.open_exceptions)}),
        (f"recon_{d}_summary.pdf", render_pdf(data, totals, options), "application/pdf", {"pages": 1}),
    ]
    paths = []
    for name, content, _, _ in files:
        p = out_dir / name
        _write_atomic(p, content)
        paths.append(p)
    manifest = {
        "format": "cvhub.recon.package/1",
        "business_date": d,
        "partition": {"by": data.partition_by, "value": data.partition},
        "csv_encoding": options.encoding,
        "files": [{"name": n, "media_type": mt, "bytes": len(b), "sha256": _sha(b), "rows": r}
                  for n, b, mt, r in files],
        "totals": totals,
        "daily": {ccy: [{"date": dd.isoformat(), "expected": _money(e, ccy), "received": _money(r, ccy)}
                        for dd, e, r in series] for ccy, series in data.daily.items()},
        "inert": inert_report(data),
        "sources": data.sources,
    }
    mpath = out_dir / "manifest.json"
    text = inert.json_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    _write_atomic(mpath, text.encode())
    return PackageResult(out_dir, (*paths, mpath), mpath, totals)


def _write_atomic(path: Path, content: bytes) -> None:
    if path.exists() and path.read_bytes() == content:
        return  # same bytes: leave the file (and its mtime) alone
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(content)
    tmp.replace(path)


def build_packages(session: Session, business_date: date, out_dir: Path, *,
                   options: PackageOptions | None = None,
                   ledger: LedgerPort | None = None) -> list[PackageResult]:
    """Write the package(s) of ``business_date`` under ``out_dir`` (one sub-directory per
    account/obligor when split). Returns one result per partition, sorted."""
    opts = options or PackageOptions()
    results = []
    for data in load_package_data(session, business_date, options=opts, ledger=ledger):
        target = out_dir if data.partition is None else out_dir / _safe_dir(data.partition)
        results.append(write_package(data, target, opts))
    return results


def _safe_dir(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".")
    return cleaned or UNASSIGNED


def verify_manifest(directory: Path) -> list[str]:
    """Problems found re-checking a package directory against its manifest (empty = complete)."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    problems: list[str] = []
    for f in manifest["files"]:
        p = directory / f["name"]
        if not p.exists():
            problems.append(f"{f['name']}: missing")
            continue
        b = p.read_bytes()
        if len(b) != f["bytes"] or _sha(b) != f["sha256"]:
            problems.append(f"{f['name']}: size or SHA-256 differs from the manifest")
    return problems


def file_names(business_date: date) -> Sequence[str]:
    d = business_date.isoformat()
    return (f"recon_{d}.csv", f"recon_{d}.xlsx", f"recon_{d}_summary.html", f"recon_{d}_summary.pdf",
            "manifest.json")
