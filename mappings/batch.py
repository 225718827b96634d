"""Batch results and the record-level checks shared by the batch formats (SRM JSON, ERP CSV, GL files).

A batch mapping never stops at a bad record: it returns ``BatchResult(records, rejected)`` where
each rejected record is a ``ledger.canonical.RejectedRecord`` (raw bytes, line/record number,
reason code, message naming the field). Record-level field parsers here raise ``RecordError``,
which the batch loop turns into a rejection. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, TypeVar

from stdnum.cn import uscc as _uscc

from ledger.canonical import RejectedRecord
from ledger.lexical import FORBIDDEN, describe, iso_datetime
from ledger.money import AmountError, exponent, to_minor
from mappings.json_records import JsonNumber

T = TypeVar("T")


@dataclass(slots=True)
class BatchResult(Generic[T]):
    """What a batch file mapped to: the good ``records`` and the ``rejected`` ones, in file order."""

    records: list[T] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)


class RecordError(ValueError):
    """One record's field is bad; becomes a RejectedRecord (never escapes a batch mapping)."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


_USCC_RE = re.compile(r"\A[0-9A-Z]{18}\Z", re.ASCII)
_DATE_RE = re.compile(r"\A([0-9]{4})([-/]?)([0-9]{2})\2([0-9]{2})\Z", re.ASCII)


def req_text(record: dict[str, object], key: str, *, max_len: int = 140) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordError("missing_field", f"{key} is required", key)
    if isinstance(value, JsonNumber) and value.is_integer:
        value = value.text  # an id the sender wrote as a JSON integer: its digits, exactly
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise RecordError("invalid_field", f"{key} must be text", key)
    text = str(value).strip()
    if len(text) > max_len:
        raise RecordError("text_too_long", f"{key} longer than {max_len} characters", key)
    bad = FORBIDDEN.search(text)
    if bad is not None:  # NUL, controls, lone surrogates: never into a database
        raise RecordError("invalid_character", f"{key} contains {describe(bad.group())}", key)
    return text


def opt_text(record: dict[str, object], key: str, *, max_len: int = 140) -> str | None:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return req_text(record, key, max_len=max_len)


def uscc(record: dict[str, object], key: str) -> str:
    """An 18-character unified social credit code (ASCII) with a valid check digit."""
    value = req_text(record, key, max_len=18).upper()
    if not _USCC_RE.match(value) or not _uscc.is_valid(value):
        raise RecordError("invalid_uscc", f"{key} {value!r} is not a valid unified social credit code", key)
    return value


def amount(record: dict[str, object], key: str, currency: str, *, allow_negative: bool = False) -> int:
    """A decimal-string amount (``"100.50"``). A JSON number (``100.5``, ``1e3``, ``1e999999``) is
    refused: whatever decoded it may already have rounded it, and the contract says text."""
    value = record.get(key)
    if value is None or value == "":
        raise RecordError("missing_field", f"{key} is required", key)
    if isinstance(value, JsonNumber):
        raise RecordError("invalid_amount", f'{key} must be a decimal string like "100.50", not the JSON '
                          f"number {value.text[:40]}", key)
    if not isinstance(value, str):
        raise RecordError("invalid_amount", f"{key} must be decimal text", key)
    try:
        return to_minor(value, currency, allow_negative=allow_negative)
    except AmountError as e:
        raise RecordError(e.code, f"{key}: {e}", key) from e


def currency(record: dict[str, object], key: str = "currency") -> str:
    value = req_text(record, key, max_len=3).upper()
    try:
        exponent(value)
    except AmountError as e:
        raise RecordError("unknown_currency", f"{key}: {e}", key) from e
    return value


def opt_date(record: dict[str, object], key: str) -> date | None:
    """``YYYY-MM-DD``, ``YYYYMMDD`` or ``YYYY/MM/DD`` in ASCII digits, nothing before or after."""
    text = opt_text(record, key, max_len=32)
    if text is None:
        return None
    m = _DATE_RE.match(text)
    try:
        if m is None:
            raise ValueError(text)
        return date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
    except ValueError as e:
        raise RecordError("invalid_date", f"{key} {text!r} is not a date (YYYY-MM-DD)", key) from e


def opt_datetime(record: dict[str, object], key: str) -> datetime | None:
    text = opt_text(record, key, max_len=40)
    if text is None:
        return None
    try:
        value = iso_datetime(text)
    except ValueError as e:
        raise RecordError("invalid_datetime", f"{key} {text!r} is not an ISO 8601 date-time", key) from e
    if value.tzinfo is None:
        raise RecordError("naive_datetime", f"{key} {text!r} has no UTC offset", key)
    return value


def reject(source: str, line: int | None, e: RecordError, raw: bytes) -> RejectedRecord:
    return RejectedRecord(source=source, line=line, reason=e.code, message=str(e), raw=raw, field=e.field)
