"""Bank financing decisions (JSON) -> canonical ``FinancingDecision``, and the same shape rendered.

A bank (REST) or its SOAP adapter hands over a decision document for one financing request:
``{"request_id", "bank_ref", "decision": "APPROVED|DISBURSED|REJECTED", "piece_id", "amount",
"currency", "interest", "net_amount", "annual_rate", "day_count", "with_recourse", "value_date",
"decided_at", "reason"}`` (amounts as decimal text). Checks: net = amount - interest when all
three are given; a rejection carries a reason; a disbursement carries amount and value date.
``render_financing_decision`` writes the same JSON (sandbox banks). No I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ledger.canonical import FinancingDecision
from mappings import batch
from mappings.batch import RecordError
from mappings.canonical_json import to_json
from mappings.errors import FieldError
from mappings.json_records import first_duplicate, loads_records

DECISIONS = ("APPROVED", "DISBURSED", "REJECTED")
_RATE_RE = re.compile(r"\A[0-9]{1,4}(?:\.[0-9]{1,10})?\Z", re.ASCII)


def financing_decision_from_record(record: dict[str, Any], *, source: str) -> FinancingDecision:
    try:
        decision = batch.req_text(record, "decision", max_len=16).upper()
        if decision not in DECISIONS:
            raise RecordError("invalid_field", f"decision {decision!r} not one of {DECISIONS}", "decision")
        ccy = batch.currency(record) if record.get("currency") else None
        def opt_amount(key: str) -> int | None:
            if ccy is None or record.get(key) is None:
                return None
            return batch.amount(record, key, ccy)

        amount, interest, net = opt_amount("amount"), opt_amount("interest"), opt_amount("net_amount")
        if amount is not None and interest is not None and net is not None and amount - interest != net:
            raise RecordError("amount_mismatch", "net_amount != amount - interest", "net_amount")
        rate = batch.opt_text(record, "annual_rate", max_len=16)
        if rate is not None and not _RATE_RE.match(rate):  # before Decimal(), which takes "３.５", "1E-2"
            raise RecordError("invalid_field", f"annual_rate {rate!r} is not plain decimal text (0.0385)",
                              "annual_rate")
        recourse = record.get("with_recourse")
        if recourse is not None and not isinstance(recourse, bool):
            raise RecordError("invalid_field", "with_recourse must be true/false", "with_recourse")
        out = FinancingDecision(
            request_id=batch.req_text(record, "request_id", max_len=64),
            bank_ref=batch.opt_text(record, "bank_ref", max_len=64),
            decision=decision,  # type: ignore[arg-type]
            piece_id=batch.opt_text(record, "piece_id", max_len=64),
            amount_minor=amount, currency=ccy, interest_minor=interest, net_amount_minor=net,
            annual_rate=rate, day_count=batch.opt_text(record, "day_count", max_len=16),
            with_recourse=recourse, value_date=batch.opt_date(record, "value_date"),
            decided_at=batch.opt_datetime(record, "decided_at"), reason=batch.opt_text(record, "reason"),
        )
        if out.decision == "REJECTED" and not out.reason:
            raise RecordError("missing_field", "a rejection needs a reason", "reason")
        if out.decision == "DISBURSED" and (out.amount_minor is None or out.value_date is None):
            raise RecordError("missing_field", "a disbursement needs amount, currency and value_date",
                              "amount" if out.amount_minor is None else "value_date")
        return out
    except RecordError as e:
        raise FieldError(str(e), source=source, field=e.field, code=e.code) from e


def parse_financing_decision(data: bytes, *, source: str) -> FinancingDecision:
    """One decision document; raises FieldError naming the field."""
    record = loads_records(data, source=source)
    dup = first_duplicate(record)
    if dup is not None:
        raise FieldError(f"{dup} appears twice in one object", source=source, field=dup,
                         code="duplicate_field")
    if not isinstance(record, dict):
        raise FieldError("expected a JSON object", source=source, code="invalid_field")
    return financing_decision_from_record(record, source=source)


def render_financing_decision(decision: FinancingDecision) -> bytes:
    """The JSON document a bank sends for ``decision`` (amounts as decimal text)."""
    data = to_json(decision)
    data = {("interest" if k == "interest" else k): v for k, v in data.items()}
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")
