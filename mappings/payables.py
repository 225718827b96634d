"""Confirmed payables from the SRM (JSON) and from ERP AP export files (CSV) -> canonical ``Payable``.

SRM JSON: a list of payable objects, or ``{"payables": [...]}`` / ``{"data": [...]}`` (cursor
pages). ERP AP CSV: a header row with English or Chinese column names (see ``ERP_AP_COLUMNS``),
GB18030 or UTF-8 with or without BOM. Every record is checked on its own (USCC check digits,
amount precision, currency, dates); a bad record becomes a ``RejectedRecord`` and the rest maps.
Field-by-field shapes are in ``docs/mappings.md``. No I/O beyond the bytes/stream handed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from ledger.canonical import Payable
from mappings import batch
from mappings.batch import BatchResult, RecordError
from mappings.csv_records import iter_csv_records
from mappings.errors import FieldError
from mappings.json_records import JsonObject, dumps_record, first_duplicate, loads_records

MAX_JSON_BYTES = 64 * 1024 * 1024

# canonical key -> accepted header names (English, Chinese)
ERP_AP_COLUMNS: dict[str, tuple[str, ...]] = {
    "payable_id": ("payable_id", "应付单号"),
    "obligor_uscc": ("obligor_uscc", "付款方统一社会信用代码"),
    "supplier_uscc": ("supplier_uscc", "供应商统一社会信用代码"),
    "supplier_name": ("supplier_name", "供应商名称"),
    "amount": ("amount", "金额"),
    "currency": ("currency", "币种"),
    "due_date": ("due_date", "到期日"),
    "invoice_no": ("invoice_no", "发票号"),
    "contract_no": ("contract_no", "合同号"),
    "receipt_no": ("receipt_no", "入库单号"),
    "confirmed_at": ("confirmed_at", "确认时间"),
}


def payable_from_record(record: dict[str, Any]) -> Payable:
    """One payable from a JSON object / CSV row dict; raises RecordError naming the field."""
    ccy = batch.currency(record)
    return Payable(
        payable_id=batch.req_text(record, "payable_id", max_len=64),
        obligor_uscc=batch.uscc(record, "obligor_uscc"),
        supplier_uscc=batch.uscc(record, "supplier_uscc"),
        amount_minor=_positive(batch.amount(record, "amount", ccy)),
        currency=ccy,
        due_date=batch.opt_date(record, "due_date"),
        invoice_no=batch.opt_text(record, "invoice_no", max_len=64),
        contract_no=batch.opt_text(record, "contract_no", max_len=64),
        receipt_no=batch.opt_text(record, "receipt_no", max_len=64),
        confirmed_at=batch.opt_datetime(record, "confirmed_at"),
        supplier_name=batch.opt_text(record, "supplier_name"),
    )


def _positive(minor: int) -> int:
    if minor <= 0:
        raise RecordError("invalid_amount", "amount must be positive", "amount")
    return minor


def _dedupe(result: BatchResult[Payable], source: str, items: Iterable[tuple[int, bytes, Payable]]) -> None:
    seen: dict[str, Payable] = {}
    for line, raw, p in items:
        prior = seen.get(p.payable_id)
        if prior is not None:
            if prior != p:
                result.rejected.append(batch.reject(source, line, RecordError(
                    "conflicting_duplicate",
                    f"payable_id {p.payable_id} appears twice with different content",
                    "payable_id"), raw))
            continue  # an identical repeat is the same payable (idempotent)
        seen[p.payable_id] = p
        result.records.append(p)


#: The SRM states in which a payable may back a voucher. A record in any other state (``DRAFT``,
#: ``PENDING``, ``CANCELLED``...) is refused as ``not_payable``; a record without ``status`` is taken
#: as what the SRM listing was asked for (``status=CONFIRMED``; ERP AP exports carry no status).
PAYABLE_STATES = ("CONFIRMED",)


def parse_srm_payables(data: bytes, *, source: str) -> BatchResult[Payable]:
    """SRM confirmed payables (JSON). Raises only if the document itself is unusable.

    Decoded strictly (``mappings.json_records``): a record with a key twice (``duplicate_field``),
    a JSON-number amount (``invalid_amount``) or a state that is not payable (``not_payable``) is
    rejected on its own and the rest of the page maps; a repeated key at the page level fails
    the page (which list was meant cannot be told).
    """
    if len(data) > MAX_JSON_BYTES:
        raise FieldError(f"document larger than {MAX_JSON_BYTES} bytes", source=source, code="too_large")
    doc = loads_records(data, source=source)
    items = doc
    if isinstance(doc, dict):
        if isinstance(doc, JsonObject) and doc.duplicates:
            raise FieldError(f"key {doc.duplicates[0]!r} appears twice in the page object", source=source,
                             field=doc.duplicates[0], code="duplicate_field")
        items = doc.get("payables", doc.get("data"))
    if not isinstance(items, list):
        raise FieldError("expected a list of payables (or {\"payables\": [...]})", source=source,
                         field="payables", code="invalid_field")
    result: BatchResult[Payable] = BatchResult()
    good: list[tuple[int, bytes, Payable]] = []
    for n, record in enumerate(items, start=1):
        raw = dumps_record(record)
        try:
            if not isinstance(record, dict):
                raise RecordError("invalid_field", "payable must be a JSON object", "payables[]")
            dup = first_duplicate(record)
            if dup is not None:
                raise RecordError("duplicate_field", f"{dup} appears twice in the record", dup)
            status = record.get("status")
            if status is not None:
                state = batch.req_text(record, "status", max_len=32)
                if state not in PAYABLE_STATES:
                    raise RecordError("not_payable", f"status {state!r} is not payable (only "
                                      f"{', '.join(PAYABLE_STATES)} is): skipped, not mapped", "status")
            good.append((n, raw, payable_from_record(record)))
        except RecordError as e:
            result.rejected.append(batch.reject(source, n, e, raw))
    _dedupe(result, source, good)
    return result


def parse_erp_ap(stream: IO[bytes] | bytes, *, source: str, encoding: str = "auto",
                 delimiter: str = ",") -> BatchResult[Payable]:
    """ERP AP export (CSV) -> payables; ``line`` of a rejection is the physical line number."""
    result: BatchResult[Payable] = BatchResult()
    good: list[tuple[int, bytes, Payable]] = []
    columns: dict[str, int] | None = None
    for rec in iter_csv_records(stream, encoding=encoding, delimiter=delimiter):
        if columns is None:
            if rec.fields is None:
                raise FieldError(f"header row unreadable: {rec.error}", source=source, line=rec.line,
                                 field="header", code=rec.error_code or "malformed_csv")
            header = [h.lstrip("\ufeff") for h in rec.fields]
            columns = {}
            for key, names in ERP_AP_COLUMNS.items():
                for name in names:
                    if name in header:
                        columns[key] = header.index(name)
            missing = [k for k in ("payable_id", "obligor_uscc", "supplier_uscc", "amount", "currency")
                       if k not in columns]
            if missing:
                raise FieldError(f"header lacks columns {missing}", source=source, line=rec.line,
                                 field=missing[0], code="missing_column")
            continue
        if rec.fields is None:
            result.rejected.append(batch.reject(source, rec.line, RecordError(
                rec.error_code or "malformed_csv", rec.error or "unreadable record", "row"), rec.raw))
            continue
        row = rec.fields
        record = {k: (row[i] if i < len(row) else None) for k, i in columns.items()}
        try:
            good.append((rec.line, rec.raw, payable_from_record(record)))
        except RecordError as e:
            result.rejected.append(batch.reject(source, rec.line, e, rec.raw))
    if columns is None:
        raise FieldError("empty file (no header row)", source=source, line=1, code="no_records")
    _dedupe(result, source, good)
    return result
