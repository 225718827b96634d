"""Bank B sandbox: a bank with REST financing (signed requests) and MT940 / GB18030 CSV statements.

Financing API (OpenAPI document at ``/openapi.json``). Every request must be signed:
``X-Key-Id``, ``X-Timestamp`` (Unix seconds, within 300 s), ``X-Content-SHA256`` (hex SHA-256 of
the body) and ``X-Signature`` = base64(HMAC-SHA256(secret, METHOD \\n path?query \\n timestamp \\n
body-sha256)); anything else is ``401 SIGNATURE_INVALID``.

- ``POST /openapi/v2/financing/applications`` (``submit_application``): ``{"serial_no",
  "voucher_id", "piece_id", "applicant": {"uscc","name","account","cnaps"}, "amount",
  "currency", "maturity_date", "registration_no", "recourse"}`` -> ``202 RECEIVED``. The serial is
  the idempotency key: the same serial and content answer the original (``200``), other content
  ``409 SERIAL_CONFLICT``.
- Decisions are asynchronous: ``decision_delay`` seconds after receipt the application is
  ``APPROVED`` (discount interest = amount x rate x days / 360, rounded half up to the fen) or
  ``REJECTED`` (no registration number; over the limit; maturity past or beyond a year);
  ``disbursement_delay`` seconds after approval it is ``DISBURSED`` and the applicant's account is
  credited with amount - interest.
- ``GET /openapi/v2/financing/applications/{serial_no}`` (``query_application``): query by serial.
- ``GET /openapi/v2/financing/notices?cursor=&limit=`` (``list_notices``): decision and
  disbursement notices in order, cursor-paginated (``duplicate`` fault: a notice twice).

Statements: ``close_day(day)`` books the day per account and delivers an MT940 file and/or a
GB18030 CSV (profile ``csv-cn-bank``) through ``deliver(name, bytes)`` (e.g. the SFTP sandbox's
``put_file``) or into ``statement_dir``. The files are rendered by the mappings layer's writers
(``mappings.mt940.render_mt940``, ``mappings.bank_csv.render_bank_csv``), so sandbox and parsers
agree on the formats.

This is a stand-in: it never moves money, never binds beyond loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import Field

from canonical.clock import SYSTEM_CLOCK, today
from ledger.money import AmountError, to_decimal_text, to_minor
from sandbox.rest_parties import enterprise
from sandbox.rest_server import Contract, RestSandbox, documented, json_request_body

BANK_BIC = "CVBBCNSHXXX"
BANK_NAME = "示范商业银行 (Bank B sandbox)"
SIGNATURE_SKEW = 300
DEFAULT_LIMIT_MINOR = 5_000_000_000  # 50,000,000.00 CNY per application


AMOUNT = r"^[0-9]+\.[0-9]{2}$"
SIGNED = [
    {"name": "X-Key-Id", "in": "header", "required": True, "schema": {"type": "string"}},
    {
        "name": "X-Timestamp",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Unix seconds, within 300 s of the bank's clock",
    },
    {
        "name": "X-Content-SHA256",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "hex SHA-256 of the body bytes (of the empty string for GET)",
    },
    {
        "name": "X-Signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "base64 HMAC-SHA256(secret, METHOD \\n path?query \\n timestamp \\n body-sha256)",
    },
]


class Applicant(Contract):
    uscc: str = Field(min_length=18, max_length=18)
    name: str
    account: str
    cnaps: str | None = None


class ApplicationBody(Contract):
    """A financing (discounting) application; ``serial_no`` is the idempotency key."""

    serial_no: str = Field(max_length=64)
    voucher_id: str
    piece_id: str | None = None
    applicant: Applicant
    amount: str = Field(pattern=AMOUNT)
    currency: str = Field(description="CNY only")
    maturity_date: str = Field(description="YYYY-MM-DD, within a year")
    registration_no: str | None = Field(None, description="中登网 registration; rejected without")
    recourse: bool = True


class Decision(Contract):
    result: str = Field(description="APPROVED | REJECTED")
    reason_code: str | None = None
    reason: str | None = None
    rate_bp: int | None = None
    day_count: str | None = None
    days: int | None = None
    discount_interest: str | None = None
    disbursed_amount: str | None = None


class Disbursement(Contract):
    amount: str = Field(pattern=AMOUNT)
    currency: str
    value_date: str
    bank_ref: str
    account: str
    cnaps: str | None = None


class ApplicationView(Contract):
    serial_no: str
    application_id: str
    status: str = Field(description="RECEIVED | APPROVED | REJECTED | DISBURSED")
    received_at: str
    amount: str
    currency: str
    voucher_id: str
    decision: Decision | None
    disbursement: Disbursement | None


class Notice(Contract):
    notice_id: str
    type: str = Field(description="DECISION | DISBURSEMENT")
    serial_no: str
    application_id: str
    issued_at: str
    amount: str
    currency: str
    status: str
    decision: Decision | None = None
    disbursement: Disbursement | None = None


class NoticePage(Contract):
    items: list[Notice]
    next_cursor: str | None
    cursor: str


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def discount_interest(amount_minor: int, rate_bp: int, days: int, basis: int = 360) -> int:
    """amount x rate x days / basis in minor units, rounded half up (integers only)."""
    num = amount_minor * rate_bp * days
    den = 10_000 * basis
    return (2 * num + den) // (2 * den)


@dataclass
class _Application:
    doc: dict[str, Any]
    digest: str
    application_id: str
    received_at: datetime
    due_decision: datetime
    status: str = "RECEIVED"
    decision: dict[str, Any] | None = None
    disbursement: dict[str, Any] | None = None
    due_disbursement: datetime | None = None

    def view(self) -> dict[str, Any]:
        return {
            "serial_no": self.doc["serial_no"],
            "application_id": self.application_id,
            "status": self.status,
            "received_at": self.received_at.isoformat(),
            "amount": self.doc["amount"],
            "currency": self.doc["currency"],
            "voucher_id": self.doc["voucher_id"],
            "decision": self.decision,
            "disbursement": self.disbursement,
        }


@dataclass
class _Booking:
    day: date
    credit_debit: str
    amount_minor: int
    reference: str
    end_to_end_id: str | None
    remittance: str
    counterparty: tuple[str | None, str | None, str | None] = (None, None, None)
    remittance_ascii: str | None = None  # MT940 uses the SWIFT character set: no Chinese


@dataclass
class _Account:
    number: str
    currency: str = "CNY"
    balance_minor: int = 0
    sequence: int = 0
    bookings: list[_Booking] = field(default_factory=list)


class BankBSandbox(RestSandbox):
    name: ClassVar[str] = "bank_b"
    title: ClassVar[str] = "cvhub Bank B sandbox (REST financing)"

    def __init__(
        self,
        *,
        key_id: str = "bankb-key-1",
        secret: str | None = None,
        decision_delay: float = 0.2,
        disbursement_delay: float = 0.2,
        rate_bp: int = 365,
        limit_minor: int = DEFAULT_LIMIT_MINOR,
        statement_dir: Path | None = None,
        deliver: Callable[[str, bytes], object] | None = None,
        statement_formats: tuple[str, ...] = ("mt940", "csv"),
        **kw: Any,
    ) -> None:
        self.key_id = key_id
        self.secret = secret or "bkb-" + pysecrets.token_urlsafe(32)
        self.decision_delay = decision_delay
        self.disbursement_delay = disbursement_delay
        self.rate_bp = rate_bp
        self.limit_minor = limit_minor
        self.statement_dir = Path(statement_dir) if statement_dir else None
        self.deliver = deliver
        self.statement_formats = statement_formats
        self._apps: dict[str, _Application] = {}
        self._notices: list[dict[str, Any]] = []
        self._accounts: dict[str, _Account] = {}
        self._next_id = 1
        super().__init__(**kw)

    # --- data ---------------------------------------------------------------------------------
    def reset_data(self) -> None:
        with self._lock:
            self._apps.clear()
            self._notices.clear()
            self._accounts.clear()
            self._next_id = 1

    def secrets(self) -> list[str]:
        return [self.secret]

    def credentials(self) -> dict[str, str]:
        return {"auth": "HMAC-SHA256 request signing", "key_id": self.key_id, "secret": self.secret}

    def application(self, serial_no: str) -> dict[str, Any] | None:
        with self._lock:
            self._advance()
            app = self._apps.get(serial_no)
            return app.view() if app else None

    def _notice(self, kind: str, app: _Application, body: dict[str, Any]) -> None:
        self._notices.append(
            {
                "notice_id": f"N{len(self._notices) + 1:08d}",
                "type": kind,
                "serial_no": app.doc["serial_no"],
                "application_id": app.application_id,
                "issued_at": self.clock().isoformat(),
                "amount": app.doc["amount"],
                "currency": app.doc["currency"],
                **body,
            }
        )

    def _decide(self, app: _Application) -> None:
        doc = app.doc
        amount = to_minor(doc["amount"], doc["currency"])
        maturity = date.fromisoformat(doc["maturity_date"])
        days = (maturity - today(self.clock)).days
        reason = None
        if not doc.get("registration_no"):
            reason = ("NO_REGISTRATION", "应收账款转让未在中登网登记")
        elif amount > self.limit_minor:
            reason = ("LIMIT_EXCEEDED", "超过单笔融资限额")
        elif days <= 0 or days > 366:
            reason = ("BAD_TENOR", "融资期限须在一年以内")
        if reason:
            app.status = "REJECTED"
            app.decision = {"result": "REJECTED", "reason_code": reason[0], "reason": reason[1]}
        else:
            interest = discount_interest(amount, self.rate_bp, days)
            app.status = "APPROVED"
            app.decision = {
                "result": "APPROVED",
                "rate_bp": self.rate_bp,
                "day_count": "ACT/360",
                "days": days,
                "discount_interest": to_decimal_text(interest, doc["currency"]),
                "disbursed_amount": to_decimal_text(amount - interest, doc["currency"]),
            }
            app.due_disbursement = self.clock() + timedelta(seconds=self.disbursement_delay)
        self._notice("DECISION", app, {"status": app.status, "decision": app.decision})

    def _disburse(self, app: _Application) -> None:
        doc = app.doc
        assert app.decision is not None
        net = to_minor(app.decision["disbursed_amount"], doc["currency"])
        value_date = today(self.clock)
        bank_ref = f"BKB{value_date:%Y%m%d}{app.application_id[-6:]}"
        app.status = "DISBURSED"
        app.disbursement = {
            "amount": app.decision["disbursed_amount"],
            "currency": doc["currency"],
            "value_date": value_date.isoformat(),
            "bank_ref": bank_ref,
            "account": doc["applicant"]["account"],
            "cnaps": doc["applicant"].get("cnaps"),
        }
        self.book(
            doc["applicant"]["account"],
            "CRDT",
            net,
            reference=bank_ref,
            end_to_end_id=doc["serial_no"],
            remittance=f"融资放款 {doc['serial_no']} 凭证{doc['voucher_id']}",
            remittance_ascii=f"FINANCING {doc['serial_no']} VOUCHER {doc['voucher_id']}",
            counterparty=(BANK_NAME, None, BANK_BIC),
            day=value_date,
            currency=doc["currency"],
        )
        self._notice("DISBURSEMENT", app, {"status": app.status, "disbursement": app.disbursement})

    def _advance(self) -> None:
        """Let time pass: decide and disburse whatever is due, in order of receipt."""
        now = self.clock()
        for app in self._apps.values():
            if app.status == "RECEIVED" and now >= app.due_decision:
                self._decide(app)
            if app.status == "APPROVED" and app.due_disbursement is not None and now >= app.due_disbursement:
                self._disburse(app)

    def _accept(self, doc: dict[str, Any], *, applied: bool = True) -> _Application:
        app = _Application(
            doc=doc,
            digest=_digest(doc),
            application_id=f"FA{self._next_id:010d}",
            received_at=self.clock(),
            due_decision=self.clock() + timedelta(seconds=self.decision_delay),
        )
        self._next_id += 1
        self._apps[doc["serial_no"]] = app
        if applied:
            self.applied(doc["serial_no"])
        return app

    def seed(self, count: int) -> None:
        """Exactly ``count`` notices: decided and disbursed applications (the last one only approved
        when ``count`` is odd)."""
        self.reset_data()
        with self._lock:
            for i in range((count + 1) // 2):
                sup = enterprise(i + 1)
                app = self._accept(_application_doc(f"SEED{i:06d}", sup, on=today(self.clock)),
                                   applied=False)
                self._decide(app)
                if 2 * i + 1 < count:
                    self._disburse(app)
                else:
                    app.due_disbursement = None  # approved, never disbursed

    # --- statements ---------------------------------------------------------------------------
    def book(
        self,
        account: str,
        credit_debit: str,
        amount_minor: int,
        *,
        reference: str,
        end_to_end_id: str | None,
        remittance: str,
        day: date | None = None,
        currency: str = "CNY",
        counterparty: tuple[str | None, str | None, str | None] = (None, None, None),
        remittance_ascii: str | None = None,
    ) -> None:
        """Book a movement on an account at Bank B (shows on the next statement of that day)."""
        if credit_debit not in ("CRDT", "DBIT") or amount_minor <= 0:
            raise ValueError("credit_debit CRDT/DBIT and a positive amount are required")
        with self._lock:
            acct = self._accounts.setdefault(account, _Account(account, currency))
            acct.bookings.append(
                _Booking(
                    day or today(self.clock),
                    credit_debit,
                    amount_minor,
                    reference,
                    end_to_end_id,
                    remittance,
                    counterparty,
                    remittance_ascii,
                )
            )

    def close_day(self, day: date | None = None) -> list[Path | str]:
        """Render and deliver the statements of ``day`` (default today) for every account that moved."""
        from mappings.bank_csv import render_bank_csv
        from mappings.mt940 import render_mt940
        from mappings.profiles import CN_BANK_CSV

        day = day or today(self.clock)
        delivered: list[Path | str] = []
        with self._lock:
            self._advance()
            for acct in self._accounts.values():
                todays = [b for b in acct.bookings if b.day == day]
                if not todays:
                    continue
                acct.bookings = [b for b in acct.bookings if b.day != day]
                acct.sequence += 1
                opening = acct.balance_minor

                created = self.clock()
                swift = _statement(acct, todays, day, opening, ascii_only=True, created_at=created)
                acct.balance_minor = swift.closing_balance_minor or 0
                stem = f"BANKB_{acct.number}_{day:%Y%m%d}_{acct.sequence:05d}"
                files: list[tuple[str, bytes]] = []
                if "mt940" in self.statement_formats:
                    files.append((stem + ".sta", render_mt940([swift], sender=BANK_BIC).encode("ascii")))
                if "csv" in self.statement_formats:
                    chinese = _statement(acct, todays, day, opening, ascii_only=False, created_at=created)
                    files.append((stem + ".csv", render_bank_csv(chinese, CN_BANK_CSV)))
                for name, data in files:
                    delivered.append(self._deliver(name, data))
        return delivered

    def close_days_through(self, day: date) -> list[Path | str]:
        """``close_day`` for every day up to ``day`` that has bookings not yet on a statement, in
        date order (so each account's statement sequence follows the dates)."""
        with self._lock:
            self._advance()
            days = sorted({b.day for a in self._accounts.values() for b in a.bookings if b.day <= day})
        return [p for d in days for p in self.close_day(d)]

    def _deliver(self, name: str, data: bytes) -> Path | str:
        if self.deliver is not None:
            self.deliver(name, data)
            return name
        if self.statement_dir is None:
            raise RuntimeError("bank_b: give statement_dir or deliver to receive statements")
        self.statement_dir.mkdir(parents=True, exist_ok=True)
        target = self.statement_dir / name
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # never visible half-written
        target.with_name(name + ".done").write_bytes(b"")
        return target

    # --- API ----------------------------------------------------------------------------------
    def verify_signature(self, request: Request, body: bytes) -> str | None:
        """None if the request is correctly signed, else the reason (never echoing secrets)."""
        h = request.headers
        key_id, ts, content_sha, signature = (
            h.get("x-key-id"),
            h.get("x-timestamp"),
            h.get("x-content-sha256"),
            h.get("x-signature"),
        )
        if not (key_id and ts and content_sha and signature):
            return "missing signature headers"
        if not hmac.compare_digest(key_id, self.key_id):
            return "unknown key id"
        # the signature window is checked against real time, as the signer stamps it with real time
        if not ts.isdigit() or abs(SYSTEM_CLOCK().timestamp() - int(ts)) > SIGNATURE_SKEW:
            return "timestamp outside the allowed window"
        if not hmac.compare_digest(content_sha, hashlib.sha256(body).hexdigest()):
            return "body hash mismatch"
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        text = "\n".join([request.method, path, ts, content_sha]).encode()
        expected = base64.b64encode(hmac.new(self.secret.encode(), text, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(signature, expected):
            return "signature mismatch"
        return None

    def build_routes(self, app: FastAPI) -> None:
        @app.post("/_sandbox/close-day", include_in_schema=False)
        def close_day_now() -> dict[str, Any]:
            return {"delivered": [str(p) for p in self.close_day()]}

        async def signed(request: Request) -> tuple[bytes, JSONResponse | None]:
            body = await request.body()
            problem = self.verify_signature(request, body)
            return body, (_error(401, "SIGNATURE_INVALID", problem) if problem else None)

        @app.post(
            "/openapi/v2/financing/applications",
            name="submit_application",
            status_code=202,
            summary="Submit a financing application (idempotent by serial_no)",
            responses=documented(ApplicationView, 400, 401, 409, 422, status=202),
            openapi_extra={**json_request_body(ApplicationBody), "parameters": SIGNED},
        )
        async def submit_application(request: Request) -> JSONResponse:
            body, refused = await signed(request)
            if refused:
                return refused
            try:
                doc = json.loads(body)
                problem = _validate(doc)
            except (ValueError, TypeError, AttributeError):
                return _error(400, "BAD_REQUEST", "body must be an application JSON object")
            if problem:
                return _error(422, "INVALID_APPLICATION", problem)
            with self._lock:
                self._advance()
                existing = self._apps.get(doc["serial_no"])
                if existing is not None:
                    if existing.digest != _digest(doc):
                        return _error(
                            409,
                            "SERIAL_CONFLICT",
                            f"serial_no {doc['serial_no']} was used with different content",
                        )
                    return JSONResponse(
                        existing.view(), status_code=200, headers={"Idempotent-Replayed": "true"}
                    )
                application = self._accept(doc)
                return JSONResponse(application.view(), status_code=202)

        @app.get(
            "/openapi/v2/financing/applications/{serial_no}",
            name="query_application",
            summary="Query an application by its serial number",
            responses=documented(ApplicationView, 401, 404),
            openapi_extra={"parameters": SIGNED},
        )
        async def query_application(
            request: Request, serial_no: str = PathParam(..., max_length=64)
        ) -> JSONResponse:
            _, refused = await signed(request)
            if refused:
                return refused
            view = self.application(serial_no)
            if view is None:
                return _error(404, "NOT_FOUND", f"no application {serial_no}")
            return JSONResponse(view)

        @app.get(
            "/openapi/v2/financing/notices",
            name="list_notices",
            summary="Decision and disbursement notices, oldest first",
            responses=documented(NoticePage, 400, 401),
            openapi_extra={"parameters": SIGNED},
        )
        async def list_notices(
            request: Request, cursor: str | None = Query(None), limit: int = Query(100, ge=1, le=500)
        ) -> JSONResponse:
            _, refused = await signed(request)
            if refused:
                return refused
            after = 0
            if cursor:
                if not cursor.startswith("n") or not cursor[1:].isdigit():
                    return _error(400, "BAD_CURSOR", "unknown cursor")
                after = int(cursor[1:])
            with self._lock:
                self._advance()
                rows = self._notices[after : after + limit]
                items = list(rows)
                if items and self.faults.take("list_notices", frozenset({"duplicate"})):
                    items.append(items[0])
                end = after + len(rows)
                more = end < len(self._notices)
            return JSONResponse(
                {"items": items, "next_cursor": f"n{end}" if more else None, "cursor": f"n{end}"}
            )


def _statement(acct: _Account, bookings: list[_Booking], day: date, opening: int, *, ascii_only: bool,
               created_at: datetime) -> Any:
    """One day's statement of ``acct``; ``ascii_only`` for MT940 (SWIFT character set, no Chinese)."""
    from ledger.canonical import Party, Statement, StatementEntry

    entries = tuple(
        StatementEntry(
            amount_minor=b.amount_minor,
            currency=acct.currency,
            credit_debit=b.credit_debit,  # type: ignore[arg-type]
            booking_date=day,
            value_date=day,
            entry_ref=b.end_to_end_id,
            account_servicer_ref=b.reference,
            end_to_end_id=b.end_to_end_id,
            remittance_info=(b.remittance_ascii or b.reference) if ascii_only else b.remittance,
            counterparty=Party(
                name=None if ascii_only else b.counterparty[0],
                account=b.counterparty[1],
                agent=b.counterparty[2],
            ),
        )
        for b in bookings
    )
    return Statement(
        source_format="mt940" if ascii_only else "csv:cn-bank",
        statement_id=f"BKB{day:%Y%m%d}{acct.sequence:05d}",
        account=acct.number,
        currency=acct.currency,
        sequence=acct.sequence,
        created_at=created_at,
        from_date=day,
        to_date=day,
        opening_balance_minor=opening,
        closing_balance_minor=opening + sum(e.signed_minor for e in entries),
        entries=entries,
        account_servicer=BANK_BIC,
    )


def _validate(doc: dict[str, Any]) -> str | None:
    for name in ("serial_no", "voucher_id", "applicant", "amount", "currency", "maturity_date"):
        if not doc.get(name):
            return f"{name} is required"
    if not isinstance(doc["serial_no"], str) or not 1 <= len(doc["serial_no"]) <= 64:
        return "serial_no: 1..64 characters"
    applicant = doc["applicant"]
    if (
        not isinstance(applicant, dict)
        or not applicant.get("account")
        or len(str(applicant.get("uscc", ""))) != 18
    ):
        return "applicant needs an 18-character uscc and an account"
    if doc["currency"] != "CNY":
        return "currency: only CNY is financed"
    try:
        if to_minor(str(doc["amount"]), "CNY") <= 0:
            return "amount must be positive"
    except AmountError as e:
        return f"amount: {e}"
    try:
        date.fromisoformat(doc["maturity_date"])
    except ValueError:
        return "maturity_date: YYYY-MM-DD"
    return None


def _application_doc(
    serial_no: str, sup: Any, *, on: date, amount: str = "100000.00", days: int = 120
) -> dict[str, Any]:
    return {
        "serial_no": serial_no,
        "voucher_id": f"CV-{serial_no}",
        "piece_id": f"CV-{serial_no}-1",
        "applicant": {"uscc": sup.uscc, "name": sup.name, "account": sup.account, "cnaps": sup.cnaps},
        "amount": amount,
        "currency": "CNY",
        "maturity_date": (on + timedelta(days=days)).isoformat(),
        "registration_no": f"{on:%Y%m%d}{serial_no[-6:]:0>12}",
        "recourse": True,
    }


def start_bank_b(
    *,
    port: int = 0,
    statement_dir: Path | None = None,
    deliver: Callable[[str, bytes], object] | None = None,
    **kw: Any,
) -> BankBSandbox:
    """Start a Bank B sandbox on 127.0.0.1: ``.url``, ``.key_id``, ``.secret``, ``.close_day()``,
    ``.stop()``."""
    sandbox = BankBSandbox(statement_dir=statement_dir, deliver=deliver, **kw)
    sandbox.start(port=port)
    return sandbox
