"""ERP GL journal files: canonical ``GlJournal`` -> CSV (GB18030 or UTF-8) for the ERP, and back.

One row per journal line: ``journal_id, company_code, journal_date, posting_id, kind,
posting_date, description, line_no, account_code, debit, credit, currency, party_uscc,
voucher_id, piece_id, memo``. Amounts and line numbers are bare numbers; every text cell is
quoted and neutralised by ``ledger.inert`` (a description carries ledger keys that outside
systems chose: a key like ``=cmd|...`` is written ``'=cmd|...``; ``parse_gl_journal`` and any
importer restore it by dropping one leading apostrophe). Rendering refuses a posting whose debits
and credits do not balance per currency, or a line that is both debit and credit. The ledger
produces the ``GlJournal``; ``parse_gl_journal`` exists for round trips and the ERP sandbox.
No I/O beyond the bytes handed in.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Literal

from ledger.canonical import GlJournal, GlLine, GlPosting
from ledger.inert import csv_row, restore_csv_cell
from ledger.lexical import iso_date
from ledger.money import AmountError, to_decimal_text, to_minor
from mappings.csv_records import iter_csv_records
from mappings.errors import FieldError, RenderError

GL_COLUMNS = ("journal_id", "company_code", "journal_date", "posting_id", "kind", "posting_date",
              "description", "line_no", "account_code", "debit", "credit", "currency", "party_uscc",
              "voucher_id", "piece_id", "memo")


def check_posting(p: GlPosting) -> None:
    """Raise RenderError unless every line is one-sided and the posting balances per currency."""
    if not p.lines:
        raise RenderError(f"posting {p.posting_id} has no lines", field="lines")
    totals: dict[str, int] = defaultdict(int)
    for n, line in enumerate(p.lines, start=1):
        one_sided = (line.debit_minor == 0) != (line.credit_minor == 0)
        if line.debit_minor < 0 or line.credit_minor < 0 or not one_sided:
            raise RenderError(f"posting {p.posting_id} line {n}: exactly one of debit/credit must be > 0",
                              field=f"postings[{p.posting_id}].lines[{n}]")
        totals[line.currency] += line.debit_minor - line.credit_minor
    for ccy, diff in totals.items():
        if diff:
            raise RenderError(f"posting {p.posting_id} does not balance in {ccy}: debits - credits = "
                              f"{to_decimal_text(diff, ccy)}", field=f"postings[{p.posting_id}]")


def render_gl_journal(journal: GlJournal, *,
                      encoding: Literal["utf-8", "utf-8-sig", "gb18030"] = "utf-8") -> bytes:
    """The journal as CSV bytes (deterministic); raises RenderError on an unbalanced posting.
    Text cells quoted and neutralised (``ledger.inert.csv_row``), amounts bare decimal numbers."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    w.writerow(GL_COLUMNS)
    for p in journal.postings:
        check_posting(p)
        for n, line in enumerate(p.lines, start=1):
            w.writerow(csv_row((
                journal.journal_id, journal.company_code, journal.journal_date, p.posting_id,
                p.kind, p.posting_date, p.description, n, line.account_code,
                Decimal(to_decimal_text(line.debit_minor, line.currency)) if line.debit_minor else None,
                Decimal(to_decimal_text(line.credit_minor, line.currency)) if line.credit_minor else None,
                line.currency, line.party_uscc, line.voucher_id, line.piece_id, line.memo,
            )))
    return buf.getvalue().encode(encoding)


def parse_gl_journal(data: bytes, *, source: str, encoding: str = "auto") -> GlJournal:
    """Read a GL journal file back (strict: any bad row is an error; the file is one transaction)."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for rec in iter_csv_records(data, encoding=encoding):
        if rec.fields is None:
            raise FieldError(rec.error or "unreadable row", source=source, line=rec.line,
                             code=rec.error_code or "malformed_csv")
        if header is None:
            header = [h.lstrip("\ufeff") for h in rec.fields]
            if tuple(header) != GL_COLUMNS:
                raise FieldError(f"header must be {','.join(GL_COLUMNS)}", source=source, line=rec.line,
                                 field="header", code="missing_column")
            continue
        row = dict(zip(header, (restore_csv_cell(f) for f in rec.fields), strict=False))
        row["_line"] = str(rec.line)
        rows.append(row)
    if not rows:
        raise FieldError("journal has no lines", source=source, code="no_records")
    postings: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        postings.setdefault(row["posting_id"], []).append(row)
    out: list[GlPosting] = []
    for pid, prow in postings.items():
        lines = []
        for row in prow:
            ccy = row["currency"]
            try:
                debit = to_minor(row["debit"], ccy) if row["debit"] else 0
                credit = to_minor(row["credit"], ccy) if row["credit"] else 0
            except AmountError as e:
                raise FieldError(str(e), source=source, line=int(row["_line"]), field="debit/credit",
                                 code=e.code) from e
            lines.append(GlLine(row["account_code"], debit, credit, ccy, row["party_uscc"] or None,
                                row["voucher_id"] or None, row["piece_id"] or None, row["memo"] or None))
        first = prow[0]
        kind = first["kind"]
        if kind not in ("issuance", "financing", "clearing", "other"):
            raise FieldError(f"unknown posting kind {kind!r}", source=source, line=int(first["_line"]),
                             field="kind", code="invalid_field")
        posting = GlPosting(pid, kind, _day(first, "posting_date", source),  # type: ignore[arg-type]
                            first["description"], tuple(lines))
        try:
            check_posting(posting)
        except RenderError as e:
            raise FieldError(e.message, source=source, line=int(first["_line"]), field="posting",
                             code="unbalanced") from e
        out.append(posting)
    first = rows[0]
    return GlJournal(first["journal_id"], first["company_code"], _day(first, "journal_date", source),
                     tuple(out))


def _day(row: dict[str, str], name: str, source: str) -> date:
    try:
        return iso_date(row[name])
    except ValueError as e:
        raise FieldError(str(e), source=source, line=int(row["_line"]), field=name,
                         code="invalid_date") from e
