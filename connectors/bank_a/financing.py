"""``BankAFinancingClient``: financing applications to bank A over SOAP, by serial number.

Submit is state-changing: an unknown outcome (timeout or drop after sending, HTTP 5xx, unreadable
answer) is resolved by ``QueryFinancing`` on the same serial, and resent under that serial only if
the bank does not know it. Amounts travel as decimal text + currency and are integer minor units
on our side (never float). Must never log or archive the WS-Security secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.errors import (
    FatalError,
    NotFound,
    OutcomeUnknown,
    RetriableError,
    ServerError,
    SoapFault,
    ValidationFailed,
)
from connectors.soap import SoapServiceClient
from ledger.money import AmountError, to_decimal_text, to_minor

log = logging.getLogger(__name__)

SYSTEM = "bank_a"
WSDL = Path(__file__).resolve().with_name("bank_a.wsdl")
BINDING = "{urn:cvhub:bank-a:financing:1}FinancingBinding"


@dataclass(frozen=True, slots=True)
class FinancingRequest:
    """A financing application for one voucher piece. ``annual_rate`` is a fraction (0.0385)."""

    serial: str
    voucher_id: str
    piece_id: str
    obligor_uscc: str
    seller_uscc: str
    seller_name: str
    seller_account: str
    amount_minor: int
    currency: str
    annual_rate: Decimal
    maturity_date: date
    registration_no: str
    recourse: bool = True
    day_count: str = "ACT/360"


@dataclass(frozen=True, slots=True)
class FinancingAck:
    serial: str
    status: str
    received_at: datetime | None
    duplicate: bool
    resolved_by_query: bool = False


@dataclass(frozen=True, slots=True)
class FinancingStatus:
    """PENDING, APPROVED, REJECTED (with reason) or DISBURSED (with date, interest and net amount)."""

    serial: str
    status: str
    face_amount_minor: int
    currency: str
    decision_reason: str | None = None
    decided_at: datetime | None = None
    bank_reference: str | None = None
    disbursement_date: date | None = None
    discount_interest_minor: int | None = None
    disbursed_amount_minor: int | None = None


@dataclass(frozen=True, slots=True)
class DisbursementNotice:
    sequence: int
    serial: str
    bank_reference: str
    disbursement_date: date
    credit_account: str
    face_amount_minor: int
    discount_interest_minor: int
    disbursed_amount_minor: int
    currency: str


def _money(value: Any, *, field: str, ref: str | None) -> tuple[int, str]:
    """zeep's simpleContent Amount ({_value_1: Decimal, Ccy: str}) -> (minor units, currency)."""
    try:
        ccy = str(value["Ccy"])
        return to_minor(value["_value_1"], ccy), ccy
    except (AmountError, KeyError, TypeError) as e:
        raise ValidationFailed(f"bad amount in {field}: {e}", system=SYSTEM, operation="parse",
                               ref=ref) from e


class BankAFinancingClient(SoapServiceClient):
    """SOAP client of bank A's financing service. Thread-safe."""

    system = SYSTEM
    default_wsdl = WSDL
    binding = BINDING

    def submit_financing(self, req: FinancingRequest, *, resolve_unknown: bool = True) -> FinancingAck:
        """Apply for financing under ``req.serial``; unknown outcomes resolved by query-then-resend."""
        try:
            return self._submit_once(req)
        except (OutcomeUnknown, ServerError) as e:
            if not resolve_unknown:
                if isinstance(e, ServerError):
                    raise OutcomeUnknown(f"HTTP {e.status} after sending; query before any resend",
                                         system=SYSTEM, operation="SubmitFinancing", ref=req.serial) from e
                raise
            log.warning("bank_a financing %s: outcome unknown (%s); resolving by query", req.serial,
                        type(e).__name__)
            return self.resolve_submit(req)

    def resolve_submit(self, req: FinancingRequest) -> FinancingAck:
        """Query by serial; resend under the same serial only if the bank does not know it."""
        try:
            st = self.query_financing(req.serial)
        except NotFound:
            log.info("bank_a financing %s: not received, resending under the same serial", req.serial)
            return self._submit_once(req)
        except RetriableError as e:
            raise OutcomeUnknown("status query failed too; still unknown, try again later",
                                 system=SYSTEM, operation="SubmitFinancing", ref=req.serial) from e
        if (st.face_amount_minor, st.currency) != (req.amount_minor, req.currency):
            raise FatalError(f"serial already used for another application "
                             f"({to_decimal_text(st.face_amount_minor, st.currency)} {st.currency})",
                             system=SYSTEM, operation="SubmitFinancing", ref=req.serial)
        return FinancingAck(req.serial, st.status, None, duplicate=True, resolved_by_query=True)

    def query_financing(self, serial: str) -> FinancingStatus:
        """The financing's current status; ``NotFound`` if the bank does not know the serial."""
        try:
            r = self.soap.call("QueryFinancing", ref=serial, state_changing=False, FinancingSerial=serial)
        except SoapFault as e:
            if e.code.endswith("UnknownFinancing"):
                raise NotFound(f"financing not known to bank A ({e.detail})", system=SYSTEM,
                               operation="QueryFinancing", ref=serial) from e
            raise
        d = r.data
        face, ccy = _money(d["FaceAmount"], field="FaceAmount", ref=serial)
        interest = _money(d["DiscountInterest"], field="DiscountInterest", ref=serial)[0] \
            if d.get("DiscountInterest") else None
        net = _money(d["DisbursedAmount"], field="DisbursedAmount", ref=serial)[0] \
            if d.get("DisbursedAmount") else None
        return FinancingStatus(serial=d["FinancingSerial"], status=d["Status"], face_amount_minor=face,
                               currency=ccy, decision_reason=d.get("DecisionReason"),
                               decided_at=d.get("DecidedAt"), bank_reference=d.get("BankReference"),
                               disbursement_date=d.get("DisbursementDate"), discount_interest_minor=interest,
                               disbursed_amount_minor=net)

    def disbursement_notices(self, after_sequence: int = 0, *,
                             page_size: int = 100) -> Iterator[DisbursementNotice]:
        """Every disbursement notice after ``after_sequence``, paging to the end (cursor = Sequence);
        a notice delivered twice is yielded once."""
        cursor = after_sequence
        while True:
            r = self.soap.call("GetDisbursementNotices", ref=f"after:{cursor}", state_changing=False,
                               AfterSequence=cursor, MaxCount=page_size)
            notices = r.data.get("Notice") or []
            for n in notices:
                if int(n["Sequence"]) <= cursor:
                    continue  # delivered twice: the cursor only moves forward
                face, ccy = _money(n["FaceAmount"], field="FaceAmount", ref=n["FinancingSerial"])
                yield DisbursementNotice(
                    sequence=int(n["Sequence"]), serial=n["FinancingSerial"],
                    bank_reference=n["BankReference"],
                    disbursement_date=n["DisbursementDate"], credit_account=n["CreditAccount"],
                    face_amount_minor=face,
                    discount_interest_minor=_money(n["DiscountInterest"], field="DiscountInterest",
                                                   ref=n["FinancingSerial"])[0],
                    disbursed_amount_minor=_money(n["DisbursedAmount"], field="DisbursedAmount",
                                                  ref=n["FinancingSerial"])[0],
                    currency=ccy)
                cursor = int(n["Sequence"])
            if not r.data.get("HasMore") or not notices:
                return

    def _submit_once(self, req: FinancingRequest) -> FinancingAck:
        r = self.soap.call(
            "SubmitFinancing", ref=req.serial, state_changing=True,
            FinancingSerial=req.serial, VoucherId=req.voucher_id, PieceId=req.piece_id,
            ObligorUscc=req.obligor_uscc, SellerUscc=req.seller_uscc, SellerName=req.seller_name,
            SellerAccount=req.seller_account,
            Amount={"_value_1": Decimal(to_decimal_text(req.amount_minor, req.currency)),
                    "Ccy": req.currency},
            AnnualRate=req.annual_rate, DayCount=req.day_count, Recourse=req.recourse,
            MaturityDate=req.maturity_date, RegistrationNo=req.registration_no,
        )
        d = r.data
        return FinancingAck(serial=d["FinancingSerial"], status=d["Status"], received_at=d.get("ReceivedAt"),
                            duplicate=bool(d["Duplicate"]))
