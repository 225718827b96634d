"""Canonical statement JSON <-> ``ledger.canonical.Statement`` (the input of ``cvhub recon run``).

The JSON is the canonical dataclass written field by field (what ``cvhub map statement`` prints):
dates as ``YYYY-MM-DD``, ``created_at`` as ISO 8601 with offset, amounts as integer
``amount_minor`` (or, leniently, ``amount`` decimal text with the currency), ``counterparty`` as an
object. The file may hold one statement object, a list of them, or ``{"statements": [...]}``.
Errors name the statement, entry and field. No I/O here beyond the text handed in; it must never
import mappings (the parsers of bank formats live there).
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from ledger.canonical import Party, Statement, StatementEntry, TransactionDetail
from ledger.command_text import DuplicateField, loads_strict
from ledger.lexical import FORBIDDEN, FORBIDDEN_IN_FREE_TEXT, describe, iso_date, iso_datetime
from ledger.money import AmountError, to_minor


class StatementJsonError(ValueError):
    """A canonical statement JSON document that cannot be read; the message names where."""


def _date(v: Any, where: str) -> date | None:
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise StatementJsonError(f"{where}: expected a YYYY-MM-DD date, got {type(v).__name__}")
    try:
        return iso_date(v)
    except ValueError as e:
        raise StatementJsonError(f"{where}: {v!r} is not a date") from e


def _int(v: Any, where: str, *, required: bool) -> int | None:
    if v is None:
        if required:
            raise StatementJsonError(f"{where}: required")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise StatementJsonError(f"{where}: expected an integer, got {v!r}")
    return v


# Free text (remittance lines, names, references) may hold tab and line breaks, as camt text can;
# never NUL, other controls or lone surrogates (they cannot be stored the same on both databases).
# The statement's own identity (id, account, currency) none at all.
_BAD = FORBIDDEN_IN_FREE_TEXT.search


def _bad_text(v: str, where: str) -> None:
    m = FORBIDDEN_IN_FREE_TEXT.search(v)
    assert m is not None
    raise StatementJsonError(f"{where}: contains {describe(m.group())} (never stored)")


def _opt_text(obj: dict[str, Any], name: str, where: str) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if type(v) is not str:
        raise StatementJsonError(f"{where}.{name}: expected text")
    if _BAD(v):
        _bad_text(v, f"{where}.{name}")
    return v


def _party(cp: dict[str, Any], where: str) -> Party:
    return Party(_opt_text(cp, "name", where), _opt_text(cp, "account", where), _opt_text(cp, "agent", where),
                 _opt_text(cp, "uscc", where))


def _decimal_text(v: Any, where: str) -> str:
    """An amount given as decimal text; a JSON number was already a binary float when it got here."""
    if type(v) is not str:
        raise StatementJsonError(f'{where}: expected decimal text like "100.50", got {type(v).__name__}')
    return v


_TEXT_FIELDS = ("status", "entry_ref", "account_servicer_ref", "end_to_end_id", "instruction_id",
                "mandate_or_serial", "remittance_info", "bank_tx_code", "return_reason")
_TX_TEXT_FIELDS = ("currency", "end_to_end_id", "instruction_id", "payment_info_id", "account_servicer_ref",
                   "remittance_info", "return_reason")
_NO_PARTY = Party()
_MISSING = object()


def _entry(obj: Any, where: str, default_ccy: str, dates: dict[Any, date | None]) -> StatementEntry:
    """One entry; the common case (integer amount, known dates) stays on a short path because a
    statement can hold a million of them. ``dates`` memoises parsed date strings."""
    if type(obj) is not dict:
        raise StatementJsonError(f"{where}: expected an object")
    get = obj.get
    ccy = get("currency") or default_ccy
    amount = get("amount_minor", _MISSING)
    if type(amount) is not int:
        if amount is _MISSING and "amount" in obj:
            try:
                amount = to_minor(_decimal_text(obj["amount"], f"{where}.amount"), ccy)
            except AmountError as e:
                raise StatementJsonError(f"{where}.amount: {e}") from e
        elif amount is _MISSING:
            raise StatementJsonError(f"{where}.amount_minor: required")
        else:
            raise StatementJsonError(f"{where}.amount_minor: expected an integer, got {amount!r}")
    if amount < 0:
        raise StatementJsonError(f"{where}.amount_minor: must be positive (direction is credit_debit)")
    cd = get("credit_debit")
    if cd not in ("CRDT", "DBIT"):
        raise StatementJsonError(f"{where}.credit_debit: expected CRDT or DBIT, got {cd!r}")
    bd = get("booking_date")
    booking = dates.get(bd, _MISSING)
    if booking is _MISSING:
        booking = dates[bd] = _date(bd, f"{where}.booking_date")
    vd = get("value_date")
    value = dates.get(vd, _MISSING)
    if value is _MISSING:
        value = dates[vd] = _date(vd, f"{where}.value_date")
    texts: dict[str, Any] = {}
    for f in _TEXT_FIELDS:
        v = get(f)
        if v is not None:
            if type(v) is not str:
                raise StatementJsonError(f"{where}.{f}: expected text")
            if _BAD(v):
                _bad_text(v, f"{where}.{f}")
            texts[f] = v
    cp = get("counterparty")
    if cp:
        if type(cp) is not dict:
            raise StatementJsonError(f"{where}.counterparty: expected an object")
        party = _party(cp, f"{where}.counterparty")
    else:
        party = _NO_PARTY
    line = get("line")
    if line is not None and type(line) is not int:
        raise StatementJsonError(f"{where}.line: expected an integer, got {line!r}")
    txs = get("transactions")
    if txs:
        texts["transactions"] = _transactions(txs, where, ccy)
    return StatementEntry(amount_minor=amount, currency=ccy, credit_debit=cd,
                          booking_date=booking, value_date=value,  # type: ignore[arg-type]
                          reversal=get("reversal") is True, counterparty=party, line=line, **texts)


def _minor_of(obj: dict[str, Any], name: str, ccy: str, where: str) -> int | None:
    """``<name>_minor`` as an integer, or ``<name>`` as decimal text (the mappings JSON shape)."""
    v = obj.get(f"{name}_minor")
    if v is not None:
        if type(v) is not int:
            raise StatementJsonError(f"{where}.{name}_minor: expected an integer, got {v!r}")
        return v
    text = obj.get(name)
    if text is None:
        return None
    try:
        return to_minor(_decimal_text(text, f"{where}.{name}"), ccy, allow_negative=True)
    except AmountError as e:
        raise StatementJsonError(f"{where}.{name}: {e}") from e


def _transactions(txs: Any, where: str, ccy: str) -> tuple[TransactionDetail, ...]:
    if not isinstance(txs, list):
        raise StatementJsonError(f"{where}.transactions: expected a list")
    out = []
    for n, tx in enumerate(txs, start=1):
        w = f"{where}.transactions[{n}]"
        if not isinstance(tx, dict):
            raise StatementJsonError(f"{w}: expected an object")
        tccy = tx.get("currency") or ccy
        cp = tx.get("counterparty") or {}
        cd = tx.get("credit_debit")
        if cd not in (None, "CRDT", "DBIT"):
            raise StatementJsonError(f"{w}.credit_debit: expected CRDT or DBIT, got {cd!r}")
        if not isinstance(cp, dict):
            raise StatementJsonError(f"{w}.counterparty: expected an object")
        t = {f: _opt_text(tx, f, w) for f in _TX_TEXT_FIELDS}
        out.append(TransactionDetail(amount_minor=_minor_of(tx, "amount", tccy, w), credit_debit=cd,
                                     counterparty=_party(cp, f"{w}.counterparty"), **t))
    return tuple(out)


def statement_from_obj(obj: Any, where: str = "statement") -> Statement:
    if not isinstance(obj, dict):
        raise StatementJsonError(f"{where}: expected an object")
    for f in ("statement_id", "account", "currency"):
        if not isinstance(obj.get(f), str) or not obj[f]:
            raise StatementJsonError(f"{where}.{f}: required text")
        bad = FORBIDDEN.search(obj[f])
        if bad:
            raise StatementJsonError(f"{where}.{f}: contains {describe(bad.group())} (never stored)")
    where = f"statement {obj['statement_id']}"
    entries = obj.get("entries")
    if not isinstance(entries, list):
        raise StatementJsonError(f"{where}.entries: expected a list")
    created = obj.get("created_at")
    try:
        created_at = iso_datetime(created) if isinstance(created, str) and created else None
    except ValueError as e:
        raise StatementJsonError(f"{where}.created_at: {created!r} is not ISO 8601") from e
    ccy = obj["currency"]
    return Statement(
        source_format=str(obj.get("source_format") or "json"),
        statement_id=obj["statement_id"], account=obj["account"], currency=ccy,
        sequence=_int(obj.get("sequence"), f"{where}.sequence", required=False),
        created_at=created_at,
        from_date=_date(obj.get("from_date"), f"{where}.from_date"),
        to_date=_date(obj.get("to_date"), f"{where}.to_date"),
        opening_balance_minor=_minor_of(obj, "opening_balance", ccy, where),
        closing_balance_minor=_minor_of(obj, "closing_balance", ccy, where),
        entries=_entries(entries, where, ccy),
        legal_sequence=_int(obj.get("legal_sequence"), f"{where}.legal_sequence", required=False),
        account_servicer=_opt_text(obj, "account_servicer", where),
        message_id=_opt_text(obj, "message_id", where),
        page=_int(obj.get("page"), f"{where}.page", required=False),
    )


def _entries(objs: list[Any], where: str, ccy: str) -> tuple[StatementEntry, ...]:
    dates: dict[Any, date | None] = {None: None, "": None}
    out: list[StatementEntry] = []
    append = out.append
    for i, e in enumerate(objs):
        try:
            append(_entry(e, "", ccy, dates))
        except StatementJsonError as err:   # name the entry only when something is wrong
            raise StatementJsonError(f"{where} entry {i + 1}{err}") from err
    return tuple(out)


def load_statements(text: str | bytes, source: str = "<statement>") -> list[Statement]:
    """Every statement in a canonical statement JSON document."""
    try:
        doc = loads_strict(text)  # a key twice in one object is refused, not "last one wins"
    except DuplicateField as e:
        raise StatementJsonError(f"{source}: {e}") from e
    except RecursionError as e:
        raise StatementJsonError(f"{source}: nested too deeply to be a statement") from e
    except UnicodeDecodeError as e:
        raise StatementJsonError(f"{source}: not UTF-8 at byte {e.start + 1}: {e.reason}") from e
    except json.JSONDecodeError as e:
        raise StatementJsonError(f"{source}: not JSON (line {e.lineno}, column {e.colno}): {e.msg}") from e
    except ValueError as e:  # an integer literal beyond Python's 4,300 digits
        raise StatementJsonError(f"{source}: not usable JSON: {e}") from e
    if isinstance(doc, dict) and "statements" in doc:
        doc = doc["statements"]
    docs = doc if isinstance(doc, list) else [doc]
    try:
        return [statement_from_obj(d) for d in docs]
    except StatementJsonError as e:
        raise StatementJsonError(f"{source}: {e}") from e


def _plain(v: Any) -> Any:
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, (Party, TransactionDetail)):
        return {f.name: _plain(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def statement_to_obj(st: Statement) -> dict[str, Any]:
    out = {f.name: _plain(getattr(st, f.name)) for f in fields(st) if f.name != "entries"}
    out["entries"] = [{f.name: _plain(getattr(e, f.name)) for f in fields(e)} for e in st.entries]
    return out


def dump_statements(statements: list[Statement]) -> str:
    return json.dumps([statement_to_obj(s) for s in statements], ensure_ascii=False, indent=1)
