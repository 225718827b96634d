"""Bank statement CSV files -> canonical statements (per-bank ``CsvProfile``), and a CSV writer.

A profile names the columns (by header text) for each canonical field, the encoding (GB18030,
UTF-8 or ``auto``; BOM or not), delimiter, date format, preamble lines, and whether amounts come
signed in one column or as separate debit/credit columns. One file is one statement of one
account. Each row is checked on its own (amount precision, dates, currency, running balance
when the bank gives one); a bad row becomes a ``RejectedRecord`` with its raw bytes and the rest
of the file still maps. The statement-level balance check runs when no row was rejected (the
running-balance check covers each accepted row either way). No I/O beyond the stream handed in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO

from ledger.canonical import CreditDebit, Party, RejectedRecord, Statement, StatementEntry
from ledger.lexical import FORBIDDEN_IN_FREE_TEXT, describe
from ledger.money import AmountError, to_decimal_text, to_minor
from mappings.csv_records import iter_csv_records
from mappings.errors import FieldError, MappingError
from mappings.statement_stream import Head, Item, Tail


@dataclass(frozen=True, slots=True)
class CsvProfile:
    """Column layout of one bank's statement CSV. Column values are header texts."""

    name: str
    booking_date: str
    currency: str | None = None           # column; or fixed_currency
    fixed_currency: str | None = None
    amount: str | None = None             # signed amount column (negative = debit) ...
    debit: str | None = None              # ... or separate debit / credit columns
    credit: str | None = None
    balance: str | None = None            # running balance after the row
    account: str | None = None            # column holding the statement's own account
    value_date: str | None = None
    reference: str | None = None          # bank's transaction serial -> account_servicer_ref
    end_to_end_id: str | None = None
    remittance: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    counterparty_bank: str | None = None
    date_formats: tuple[str, ...] = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d")
    encoding: str = "auto"                # "gb18030", "utf-8" or "auto"
    delimiter: str = ","
    skip_lines: int = 0                   # preamble lines before the header row
    thousands: str | None = None          # e.g. "," if the bank writes 1,000.00 (then quoted)
    extra: dict[str, str] = field(default_factory=dict)

    def columns(self) -> dict[str, str]:
        names = ("booking_date", "currency", "amount", "debit", "credit", "balance", "account", "value_date",
                 "reference", "end_to_end_id", "remittance", "counterparty_name", "counterparty_account",
                 "counterparty_bank")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


_TEXT_COLUMNS = ("reference", "end_to_end_id", "remittance", "counterparty_name", "counterparty_account",
                 "counterparty_bank")


class _RowError(Exception):
    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


def _date(text: str, formats: tuple[str, ...], field: str) -> date:
    if not text.isascii():  # strptime's %Y/%m/%d take every script's digits ("２０２６")
        raise _RowError("invalid_date", f"{field} {text!r} is not written in ASCII digits", field)
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date, no time of day
        except ValueError:
            continue
    raise _RowError("invalid_date", f"{field} {text!r} matches none of {list(formats)}", field)


def _minor(text: str, ccy: str, field: str, thousands: str | None, *, signed: bool) -> int:
    if thousands:
        text = text.replace(thousands, "")
    try:
        return to_minor(text, ccy, allow_negative=signed)
    except AmountError as e:
        raise _RowError(e.code, f"{field}: {e}", field) from e


def iter_bank_csv_items(stream: IO[bytes] | bytes, *, source: str, profile: CsvProfile) -> Iterator[Item]:
    """The flat item stream of one bank CSV statement (bad rows as RejectedRecord items)."""
    cols = profile.columns()
    index: dict[str, int] | None = None
    account: str | None = None
    ccy: str | None = profile.fixed_currency
    running: int | None = None
    opening: int | None = None
    first_date: date | None = None
    last_date: date | None = None
    head_sent = False
    rejected = 0
    early: list[RejectedRecord] = []  # rows rejected before the first good one
    for rec in iter_csv_records(stream, encoding=profile.encoding, delimiter=profile.delimiter,
                                skip_lines=profile.skip_lines):
        if index is None:
            if rec.fields is None:
                raise FieldError(f"header row unreadable: {rec.error}", source=source, line=rec.line,
                                 field="header", code=rec.error_code or "malformed_csv")
            header = [h.lstrip("\ufeff") for h in rec.fields]
            missing = [c for c in cols.values() if c not in header]
            if missing:
                raise FieldError(f"header lacks columns {missing} required by profile {profile.name}",
                                 source=source, line=rec.line, field=missing[0], code="missing_column")
            index = {name: header.index(col) for name, col in cols.items()}
            continue
        if rec.fields is None:
            rejected += 1
            running = None
            bad = RejectedRecord(source, rec.line, rec.error_code or "malformed_csv", rec.error or "",
                                 rec.raw)
            if head_sent:
                yield bad
            else:
                early.append(bad)
            continue
        try:
            row = rec.fields
            if len(row) < len(index) and len(row) <= max(index.values()):
                raise _RowError("missing_field", f"row has {len(row)} fields, header has more", "row")

            idx: dict[str, int] = index

            def get(name: str, row: list[str] = row, idx: dict[str, int] = idx) -> str | None:
                i = idx.get(name)
                value = row[i].strip() if i is not None and i < len(row) else ""
                bad = FORBIDDEN_IN_FREE_TEXT.search(value)
                if bad is not None:  # control characters never reach the reconciliation tables
                    raise _RowError("invalid_character", f"{cols.get(name, name)} contains "
                                    f"{describe(bad.group())}", cols.get(name, name))
                return value or None

            row_ccy = get("currency") or ccy
            if row_ccy is None:
                raise _RowError("missing_field", "no currency", cols.get("currency", "currency"))
            if ccy is not None and row_ccy != ccy:
                raise _RowError("currency_mismatch", f"currency {row_ccy} differs from {ccy}",
                                cols.get("currency", "currency"))
            row_acct = get("account")
            if account is not None and row_acct is not None and row_acct != account:
                raise _RowError("account_mismatch", f"account {row_acct} differs from {account}",
                                cols["account"])
            bdate_text = get("booking_date")
            if bdate_text is None:
                raise _RowError("missing_field", "no booking date", cols["booking_date"])
            bdate = _date(bdate_text, profile.date_formats, cols["booking_date"])
            vtext = get("value_date")
            vdate = _date(vtext, profile.date_formats, cols["value_date"]) if vtext else bdate
            cd: CreditDebit
            if "amount" in cols:
                a_text = get("amount")
                if a_text is None:
                    raise _RowError("missing_field", "no amount", cols["amount"])
                signed = _minor(a_text, row_ccy, cols["amount"], profile.thousands, signed=True)
            else:
                d_text, c_text = get("debit"), get("credit")
                d = _minor(d_text, row_ccy, cols["debit"], profile.thousands, signed=False) if d_text else 0
                c = _minor(c_text, row_ccy, cols["credit"], profile.thousands, signed=False) if c_text else 0
                if (d == 0) == (c == 0):
                    raise _RowError("invalid_amount", "exactly one of debit/credit must be non-zero",
                                    cols["debit"])
                signed = c - d
            if signed == 0:
                raise _RowError("invalid_amount", "zero amount", cols.get("amount") or cols["debit"])
            cd = "CRDT" if signed > 0 else "DBIT"
            b_text = get("balance")
            balance = _minor(b_text, row_ccy, cols["balance"], profile.thousands, signed=True) \
                if b_text else None
            if balance is not None and running is not None and running + signed != balance:
                raise _RowError("balance_mismatch",
                                f"running balance {to_decimal_text(running, row_ccy)} + "
                                f"{to_decimal_text(signed, row_ccy)} != {to_decimal_text(balance, row_ccy)}",
                                cols["balance"])
            texts = {n: get(n) for n in _TEXT_COLUMNS}  # read here: a bad one rejects the row
        except _RowError as e:
            rejected += 1
            running = None  # the rejected row's effect is unknown: the next balance re-anchors
            bad = RejectedRecord(source, rec.line, e.code, str(e), rec.raw, e.field)
            if head_sent:
                yield bad
            else:  # a statement's items come after its head: held until the first good row
                early.append(bad)
            continue
        ccy = row_ccy
        account = account or row_acct or profile.extra.get("account")
        if balance is not None:
            if opening is None:
                opening = balance - signed
            running = balance
        first_date = first_date or bdate
        last_date = bdate
        if not head_sent:
            if account is None:
                raise FieldError("no account column and no account in the profile", source=source,
                                 line=rec.line, field="account", code="missing_field")
            head_sent = True
            yield Head(Statement(
                source_format=f"csv:{profile.name}", statement_id=f"{profile.name}:{account}:{bdate}",
                account=account, currency=ccy, sequence=None, created_at=None, from_date=bdate, to_date=None,
                opening_balance_minor=opening, closing_balance_minor=None, entries=()),
                line=rec.line, requires_balances=False, sequenced=False)
            yield from early
        yield StatementEntry(
            amount_minor=abs(signed), currency=ccy, credit_debit=cd, booking_date=bdate, value_date=vdate,
            account_servicer_ref=texts["reference"], end_to_end_id=texts["end_to_end_id"],
            remittance_info=texts["remittance"],
            counterparty=Party(name=texts["counterparty_name"], account=texts["counterparty_account"],
                               agent=texts["counterparty_bank"]),
            line=rec.line)
    if index is None:
        raise MappingError("empty CSV (no header row)", source=source, line=1, code="no_statement")
    if not head_sent:
        raise MappingError(f"no valid row ({rejected} rejected)", source=source, code="no_statement")
    # With rejected rows the statement-level balance check cannot hold; the per-row check did.
    yield Tail(line=None, closing_balance_minor=running if rejected == 0 else None, to_date=last_date)


def render_bank_csv(statement: Statement, profile: CsvProfile) -> bytes:
    """Write a statement in ``profile``'s layout (header + one row per entry, running balance)."""
    cols = profile.columns()
    header = list(cols.values())
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=profile.delimiter, lineterminator="\r\n")
    for _ in range(profile.skip_lines):
        w.writerow([f"# {profile.name} statement {statement.statement_id}"])
    w.writerow(header)
    ccy = statement.currency
    running = statement.opening_balance_minor
    fmt = profile.date_formats[0]
    for e in statement.entries:
        signed = e.signed_minor
        values: dict[str, str] = {
            "booking_date": (e.booking_date or e.value_date or date(1970, 1, 1)).strftime(fmt),
            "value_date": (e.value_date or e.booking_date or date(1970, 1, 1)).strftime(fmt),
            "currency": ccy, "account": statement.account,
            "amount": to_decimal_text(signed, ccy),
            "debit": to_decimal_text(e.amount_minor, ccy) if signed < 0 else "",
            "credit": to_decimal_text(e.amount_minor, ccy) if signed > 0 else "",
            "reference": e.account_servicer_ref or "", "end_to_end_id": e.end_to_end_id or "",
            "remittance": e.remittance_info or "", "counterparty_name": e.counterparty.name or "",
            "counterparty_account": e.counterparty.account or "",
            "counterparty_bank": e.counterparty.agent or "",
        }
        if running is not None:
            running += signed
            values["balance"] = to_decimal_text(running, ccy)
        elif "balance" in cols:
            raise MappingError("profile has a balance column but the statement no opening balance",
                               field="opening_balance", code="render_error")
        w.writerow([values[name] for name in cols])
    enc = "utf-8" if profile.encoding == "auto" else profile.encoding
    return buf.getvalue().encode(enc)
