"""SRM sandbox: a supplier relationship management system's REST API (confirmed payables out,
voucher numbers and statuses back in).

API (OpenAPI document at ``/openapi.json``; ``Authorization: Bearer <token>`` on every call):

- ``GET /api/v1/payables?status=CONFIRMED&since=<cursor>&limit=<n>`` (``list_payables``): payables
  confirmed after the cursor, oldest first. Body ``{"items": [...], "next_cursor": str|null,
  "cursor": str}``: follow ``next_cursor`` to the end; save ``cursor`` of the last page as the
  high-water mark for the next run. Cursors are opaque.
- ``GET /api/v1/payables/{payable_id}`` (``get_payable``): one payable with its write-back state.
- ``POST /api/v1/payables/{payable_id}/voucher`` (``write_back_voucher``): ``{"voucher_no",
  "status", "amount", "currency"}`` with a required ``Idempotency-Key``. The same key and body
  answer the original result (header ``Idempotent-Replayed: true``); the same key with another
  body is ``422 IDEMPOTENCY_CONFLICT``. A write-back identical to the current state applies
  nothing.
- ``POST /api/v1/voucher-writebacks:batch`` (``write_back_vouchers_batch``): ``{"items": [{"payable_id",
  "voucher_no", "status", "amount"?, "currency"?}, ...]}`` (1..500 items) with a required
  ``Idempotency-Key`` for the whole batch (same key and body: the original answer, header
  ``Idempotent-Replayed: true``; same key, other body: ``422 IDEMPOTENCY_CONFLICT``; a malformed
  body or more than 500 items: ``400``/``422``, nothing applied). Each item is applied on its own
  and is idempotent by itself (an item identical to the payable's current write-back applies
  nothing, so a batch re-sent under a NEW key has no second effect either). An item that cannot
  apply gets a per-item ``error`` ``{"code", "message"}`` and the rest of the batch still applies:
  ``NOT_FOUND`` (no such payable), ``BAD_STATUS``, ``AMOUNT_MISMATCH``/``CURRENCY_MISMATCH`` (the
  item's amount or currency differs from the payable's), ``VOUCHER_CONFLICT`` (the payable is
  already covered by another voucher that is not ``REVOKED``), ``DUPLICATE_ITEM`` (the payable
  appears twice in the batch with different content). Answer: ``{"items": [{"payable_id", "ok",
  "applied", "voucher", "error"}], "applied": n, "failed": n}`` in request order.

A payable record (UTF-8 JSON; amounts are decimal strings, never floats)::

    {"payable_id": "AP-20261128-000001", "status": "CONFIRMED", "currency": "CNY",
     "amount": "125000.00", "due_date": "2027-03-01", "confirmed_at": "2026-11-28T09:30:00+08:00",
     "obligor": {"uscc": "...", "name": "..."}, "supplier": {"uscc": "...", "name": "...",
     "bank_account": "...", "cnaps": "..."}, "invoice_no": "...", "contract_no": "...",
     "receipt_no": "...", "voucher": null | {"voucher_no": "...", "status": "...", "updated_at": "..."}}

Faults: see ``sandbox.rest_faults`` (``duplicate`` on ``list_payables`` repeats a record on the page).
A ``client_error`` fault armed on ``write_back_voucher`` also refuses that many batch ITEMS (per-item
error ``SANDBOX_REFUSED``), so "the SRM refuses this payable's write-back" reads the same on both paths.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as pysecrets
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, ClassVar

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from canonical.clock import SYSTEM_CLOCK, Clock, today
from sandbox.rest_parties import OBLIGOR, enterprise
from sandbox.rest_server import Contract, RestSandbox, documented, json_request_body

CST = timezone(timedelta(hours=8))
WRITE_BACK_STATUSES = ("ISSUED", "ACCEPTED", "REJECTED", "TRANSFERRED", "FINANCED", "SETTLED", "REVOKED")


AMOUNT = r"^[0-9]+\.[0-9]{2}$"


class PartyRef(Contract):
    uscc: str = Field(min_length=18, max_length=18, description="unified social credit code")
    name: str


class SupplierRef(PartyRef):
    bank_account: str
    cnaps: str = Field(min_length=12, max_length=12, description="12-digit CNAPS bank code")


class VoucherState(Contract):
    voucher_no: str
    status: str
    updated_at: str


class PayableRecord(Contract):
    """A confirmed payable as the SRM lists it (amounts are decimal strings, never floats)."""

    payable_id: str
    status: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount: str = Field(pattern=AMOUNT)
    due_date: str
    confirmed_at: str
    obligor: PartyRef
    supplier: SupplierRef
    invoice_no: str | None
    contract_no: str | None
    receipt_no: str | None
    voucher: VoucherState | None


class PayablePage(Contract):
    items: list[PayableRecord]
    next_cursor: str | None = Field(description="follow until null")
    cursor: str = Field(description="high-water mark: pass as `since` on the next run")


class WriteBackRequest(Contract):
    voucher_no: str
    status: str = Field(description=" | ".join(WRITE_BACK_STATUSES))
    amount: str | None = Field(None, pattern=AMOUNT)
    currency: str | None = None


class WriteBackResult(Contract):
    payable_id: str
    voucher: VoucherState


BATCH_MAX = 500


class BatchWriteBackItem(WriteBackRequest):
    payable_id: str = Field(min_length=1, max_length=64)


class BatchWriteBackRequest(Contract):
    items: list[BatchWriteBackItem] = Field(min_length=1, max_length=BATCH_MAX)


class ItemError(Contract):
    code: str
    message: str


class BatchItemResult(Contract):
    payable_id: str
    ok: bool
    applied: bool = Field(description="this item changed the payable (false: already so, or error)")
    voucher: VoucherState | None
    error: ItemError | None


class BatchWriteBackResult(Contract):
    items: list[BatchItemResult] = Field(description="one per request item, in request order")
    applied: int
    failed: int


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"srm:{seq}".encode()).decode().rstrip("=")


def _seq_of(cursor: str | None) -> int | None:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, seq = text.split(":", 1)
        return int(seq) if prefix == "srm" else None
    except ValueError:
        return None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


class SrmSandbox(RestSandbox):
    name: ClassVar[str] = "srm"
    title: ClassVar[str] = "cvhub SRM sandbox"

    def __init__(self, *, token: str | None = None, **kw: Any) -> None:
        self.token = token or "srm-" + pysecrets.token_urlsafe(24)
        self._payables: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._idem: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self._next_no = 1
        super().__init__(**kw)

    # --- data ---------------------------------------------------------------------------------
    def reset_data(self) -> None:
        with self._lock:
            self._payables.clear()
            self._order.clear()
            self._idem.clear()
            self._next_no = 1

    def add_payable(
        self,
        *,
        supplier: int | None = None,
        amount: str | None = None,
        payable_id: str | None = None,
        due_date: date | None = None,
    ) -> dict[str, Any]:
        """Confirm one more payable (it appears at the end of the listing)."""
        with self._lock:
            n = self._next_no
            self._next_no += 1
            sup = enterprise(supplier if supplier is not None else n % 50 + 1)
            day = today(self.clock)
            confirmed = datetime.combine(day, time(9, 0), tzinfo=CST) + timedelta(minutes=n)
            record: dict[str, Any] = {
                "payable_id": payable_id or f"AP-20261128-{n:06d}",
                "status": "CONFIRMED",
                "currency": "CNY",
                "amount": amount or f"{(n * 7919) % 900000 + 1000}.{n % 100:02d}",
                "due_date": (due_date or day + timedelta(days=90 + n % 90)).isoformat(),
                "confirmed_at": confirmed.isoformat(),
                "obligor": {"uscc": OBLIGOR.uscc, "name": OBLIGOR.name},
                "supplier": {
                    "uscc": sup.uscc,
                    "name": sup.name,
                    "bank_account": sup.account,
                    "cnaps": sup.cnaps,
                },
                "invoice_no": f"{44000000 + n:08d}",
                "contract_no": f"HT-2026-{n:05d}",
                "receipt_no": f"GR-{n:07d}",
                "voucher": None,
                "_seq": n,
            }
            self._payables[record["payable_id"]] = record
            self._order.append(record["payable_id"])
            return _public(record)

    def seed(self, count: int) -> None:
        self.reset_data()
        for _ in range(count):
            self.add_payable()

    def payable(self, payable_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._payables.get(payable_id)
            return _public(record) if record else None

    def secrets(self) -> list[str]:
        return [self.token]

    def credentials(self) -> dict[str, str]:
        return {"auth": "Authorization: Bearer", "token": self.token}

    # --- API ----------------------------------------------------------------------------------
    def _authorised(self, authorization: str | None) -> bool:
        expected = f"Bearer {self.token}"
        return authorization is not None and pysecrets.compare_digest(
            authorization.encode(), expected.encode()
        )

    def build_routes(self, app: FastAPI) -> None:
        unauthorised = _error(401, "UNAUTHORISED", "missing or invalid bearer token")

        @app.get(
            "/api/v1/payables",
            name="list_payables",
            summary="Confirmed payables since a cursor, oldest first",
            responses=documented(PayablePage, 400, 401),
        )
        def list_payables(
            authorization: str | None = Header(None),
            status: str = Query("CONFIRMED"),
            since: str | None = Query(None, description="opaque cursor"),
            cursor: str | None = Query(None, description="next page cursor"),
            limit: int = Query(100, ge=1, le=500),
        ) -> JSONResponse:
            if not self._authorised(authorization):
                return unauthorised
            after = _seq_of(cursor or since)
            if after is None:
                return _error(400, "BAD_CURSOR", "cursor is not one this server issued")
            with self._lock:
                rows = [
                    self._payables[p]
                    for p in self._order
                    if self._payables[p]["_seq"] > after and self._payables[p]["status"] == status
                ]
                page = rows[:limit]
                items = [_public(r) for r in page]
                if items and self.faults.take("list_payables", frozenset({"duplicate"})):
                    items.append(items[0])  # the same record delivered twice
                last = page[-1]["_seq"] if page else after
                more = len(rows) > limit
            return JSONResponse(
                {"items": items, "next_cursor": _cursor(last) if more else None, "cursor": _cursor(last)}
            )

        @app.get(
            "/api/v1/payables/{payable_id}",
            name="get_payable",
            summary="One payable",
            responses=documented(PayableRecord, 401, 404),
        )
        def get_payable(
            payable_id: str = Path(..., max_length=64), authorization: str | None = Header(None)
        ) -> JSONResponse:
            if not self._authorised(authorization):
                return unauthorised
            record = self.payable(payable_id)
            if record is None:
                return _error(404, "NOT_FOUND", f"no payable {payable_id}")
            return JSONResponse(record)

        @app.post(
            "/api/v1/payables/{payable_id}/voucher",
            name="write_back_voucher",
            summary="Write back the voucher number and status of a payable (idempotent by key)",
            responses=documented(WriteBackResult, 400, 401, 404, 422),
            openapi_extra=json_request_body(WriteBackRequest),
        )
        async def write_back(
            request: Request,
            payable_id: str = Path(..., max_length=64),
            authorization: str | None = Header(None),
            idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
        ) -> JSONResponse:
            if not self._authorised(authorization):
                return unauthorised
            if not idempotency_key:
                return _error(400, "IDEMPOTENCY_KEY_REQUIRED", "Idempotency-Key header is required")
            raw = await request.body()
            try:
                doc = json.loads(raw)
                voucher_no, status = str(doc["voucher_no"]), str(doc["status"])
            except (ValueError, KeyError, TypeError):
                return _error(400, "BAD_REQUEST", "body must be JSON with voucher_no and status")
            if status not in WRITE_BACK_STATUSES:
                return _error(422, "BAD_STATUS", f"status must be one of {', '.join(WRITE_BACK_STATUSES)}")
            digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
            with self._lock:
                seen = self._idem.get(idempotency_key)
                if seen is not None:
                    if seen[0] != digest:
                        return _error(
                            422, "IDEMPOTENCY_CONFLICT", "this Idempotency-Key was used with a different body"
                        )
                    return JSONResponse(seen[2], status_code=seen[1], headers={"Idempotent-Replayed": "true"})
                record = self._payables.get(payable_id)
                if record is None:
                    return _error(404, "NOT_FOUND", f"no payable {payable_id}")
                current = record["voucher"]
                if not (current and current["voucher_no"] == voucher_no and current["status"] == status):
                    record["voucher"] = {
                        "voucher_no": voucher_no,
                        "status": status,
                        "updated_at": self.clock().isoformat(),
                    }
                    self.applied(payable_id)
                result = {"payable_id": payable_id, "voucher": record["voucher"]}
                self._idem[idempotency_key] = (digest, 200, result)
            return JSONResponse(result)

        @app.post(
            "/api/v1/voucher-writebacks:batch",
            name="write_back_vouchers_batch",
            summary="Write back up to 500 vouchers at once (batch idempotent by key, items by content)",
            responses=documented(BatchWriteBackResult, 400, 401, 422),
            openapi_extra=json_request_body(BatchWriteBackRequest),
        )
        async def write_back_batch(
            request: Request,
            authorization: str | None = Header(None),
            idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
        ) -> JSONResponse:
            if not self._authorised(authorization):
                return unauthorised
            if not idempotency_key:
                return _error(400, "IDEMPOTENCY_KEY_REQUIRED", "Idempotency-Key header is required")
            raw = await request.body()
            try:
                doc = json.loads(raw)
                items = doc["items"]
                if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                    raise TypeError("items")
            except (ValueError, KeyError, TypeError):
                return _error(400, "BAD_REQUEST", "body must be JSON with a list of items")
            if not 1 <= len(items) <= BATCH_MAX:
                return _error(422, "BATCH_SIZE", f"a batch holds 1..{BATCH_MAX} items, not {len(items)}")
            digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
            with self._lock:
                seen = self._idem.get(idempotency_key)
                if seen is not None:
                    if seen[0] != digest:
                        return _error(
                            422, "IDEMPOTENCY_CONFLICT", "this Idempotency-Key was used with a different body"
                        )
                    return JSONResponse(seen[2], status_code=seen[1], headers={"Idempotent-Replayed": "true"})
                firsts: dict[str, str] = {}
                results = [self._apply_item(item, firsts) for item in items]
                failed = sum(1 for r in results if not r["ok"])
                body = {
                    "items": results,
                    "applied": sum(1 for r in results if r["applied"]),
                    "failed": failed,
                }
                self._idem[idempotency_key] = (digest, 200, body)
            return JSONResponse(body)

    def _apply_item(self, item: dict[str, Any], firsts: dict[str, str]) -> dict[str, Any]:
        """One batch item under the lock: apply it, or say why not (the rest of the batch goes on)."""
        pid = item.get("payable_id")
        pid = pid if isinstance(pid, str) else ""

        def refused(code: str, message: str) -> dict[str, Any]:
            voucher = self._payables[pid]["voucher"] if pid in self._payables else None
            return {
                "payable_id": pid,
                "ok": False,
                "applied": False,
                "voucher": voucher,
                "error": {"code": code, "message": message},
            }

        voucher_no, status = item.get("voucher_no"), item.get("status")
        if not pid or not isinstance(voucher_no, str) or not isinstance(status, str):
            return refused("BAD_ITEM", "an item needs payable_id, voucher_no and status (strings)")
        if status not in WRITE_BACK_STATUSES:
            return refused("BAD_STATUS", f"status must be one of {', '.join(WRITE_BACK_STATUSES)}")
        if self.faults.take("write_back_voucher", frozenset({"client_error"})) is not None:
            return refused("SANDBOX_REFUSED", "injected client error (write_back_voucher fault)")
        content = json.dumps(item, sort_keys=True)
        if firsts.setdefault(pid, content) != content:
            return refused("DUPLICATE_ITEM", f"{pid} appears twice in this batch with different content")
        record = self._payables.get(pid)
        if record is None:
            return refused("NOT_FOUND", f"no payable {pid}")
        amount, currency = item.get("amount"), item.get("currency")
        if amount is not None and amount != record["amount"]:
            return refused("AMOUNT_MISMATCH", f"amount {amount} is not the payable's {record['amount']}")
        if currency is not None and currency != record["currency"]:
            return refused("CURRENCY_MISMATCH", f"currency {currency} is not the payable's")
        current = record["voucher"]
        if current and current["voucher_no"] != voucher_no and current["status"] != "REVOKED":
            return refused("VOUCHER_CONFLICT", f"{pid} is covered by voucher {current['voucher_no']}")
        applied = not (current and current["voucher_no"] == voucher_no and current["status"] == status)
        if applied:
            record["voucher"] = {
                "voucher_no": voucher_no,
                "status": status,
                "updated_at": self.clock().isoformat(),
            }
            self.applied(pid)
        return {
            "payable_id": pid,
            "ok": True,
            "applied": applied,
            "voucher": record["voucher"],
            "error": None,
        }


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def start_srm(*, port: int = 0, token: str | None = None, clock: Clock = SYSTEM_CLOCK) -> SrmSandbox:
    """Start an SRM sandbox on 127.0.0.1 (ephemeral port unless given); ``.url``, ``.token``, ``.stop()``."""
    sandbox = SrmSandbox(token=token, clock=clock)
    sandbox.start(port=port)
    return sandbox
