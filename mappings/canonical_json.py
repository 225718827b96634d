"""Canonical values <-> JSON-ready dicts: amounts as decimal strings with their currency.

The one JSON shape of every canonical type (documented in ``docs/mappings.md``), used by the
``cvhub map`` CLI, the expected-output files of the sample tests and ``pain001`` instruction
files. Amounts: ``{"amount": "1000.50", "currency": "CNY"}`` style keys (``*_minor`` fields become
decimal text under the same name without ``_minor``); dates ISO 8601; bytes (quarantined raw
records) as base64.
No I/O.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import date, datetime
from typing import Any

from ledger.canonical import Party, PaymentInstruction
from ledger.lexical import iso_date
from ledger.money import AmountError, to_decimal_text, to_minor
from mappings.errors import FieldError


def to_json(value: Any, currency: str | None = None) -> Any:
    """A canonical dataclass (or list/tuple of them) as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        ccy = getattr(value, "currency", None) or currency
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.name.endswith("_minor"):
                name = f.name[: -len("_minor")]
                out[name] = None if v is None else (to_decimal_text(v, ccy) if ccy else str(v))
            else:
                out[f.name] = to_json(v, ccy)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(v, currency) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _party(data: Any, field: str) -> Party:
    if not isinstance(data, dict):
        raise FieldError(f"{field} must be an object", field=field, code="invalid_field")
    return Party(name=data.get("name"), account=data.get("account"), agent=data.get("agent"),
                 uscc=data.get("uscc"))


def instruction_from_json(data: Any, *, index: int = 0) -> PaymentInstruction:
    """A PaymentInstruction from its canonical JSON shape (``amount`` decimal text + ``currency``)."""
    where = f"instructions[{index}]"
    if not isinstance(data, dict):
        raise FieldError("instruction must be an object", field=where, code="invalid_field")
    try:
        ccy = str(data["currency"])
        amount = data["amount"]
        if not isinstance(amount, str):
            raise FieldError("amount must be decimal text (a JSON string), never a number",
                             field=f"{where}.amount", code="invalid_amount")
        return PaymentInstruction(
            instruction_id=str(data["instruction_id"]),
            end_to_end_id=str(data["end_to_end_id"]),
            amount_minor=to_minor(amount, ccy),
            currency=ccy,
            requested_execution_date=iso_date(str(data["requested_execution_date"])),
            debtor=_party(data["debtor"], f"{where}.debtor"),
            creditor=_party(data["creditor"], f"{where}.creditor"),
            remittance_info=data.get("remittance_info"),
        )
    except KeyError as e:
        raise FieldError(f"missing {e.args[0]}", field=f"{where}.{e.args[0]}", code="missing_field") from e
    except AmountError as e:
        raise FieldError(str(e), field=f"{where}.amount", code=e.code) from e
    except ValueError as e:
        if isinstance(e, FieldError):
            raise
        raise FieldError(str(e), field=where, code="invalid_field") from e
