"""The key elements of a trade contract, each with its evidence, and the plain payable and voucher
facts a contract is checked against.

Produced by the element rules (``mappings/contracts/``) from a ``DocumentText``; consumed by the
review checks (``ledger/review/checks.py``), the review queue and the bench. Amounts are integer
minor units; dates are ``datetime.date``. An element the rules could not find is ``None``; one they
found but are unsure of carries a low ``confidence`` — the checks treat both as disagreements,
never as a pass. This module imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Generic, Literal, TypeVar

from canonical.documents import BBox

T = TypeVar("T")
VoucherClause = Literal["yes", "no"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where an element was read: 1-based page, box in points from the top-left, the text of the
    line(s) it came from, and a confidence in 0..1 (text layer x rule certainty, or OCR's)."""

    page: int
    bbox: BBox
    text: str
    confidence: float

    def as_dict(self) -> dict[str, object]:
        return {
            "page": self.page,
            "bbox": self.bbox.as_list(),
            "text": self.text,
            "confidence": round(self.confidence, 3),
        }


@dataclass(frozen=True, slots=True)
class Element(Generic[T]):
    value: T
    evidence: Evidence

    @property
    def confidence(self) -> float:
        return self.evidence.confidence


@dataclass(frozen=True, slots=True)
class DeliveryTerms:
    """Delivery or acceptance terms: the clause text, the latest delivery date when the contract
    names one, and the days the buyer has to accept (验收) after delivery when it names them."""

    text: str
    deliver_by: date | None
    acceptance_days: int | None


@dataclass(frozen=True, slots=True)
class ContractElements:
    """What the machine read from one contract. ``None``: not found."""

    contract_no: Element[str] | None = None
    buyer_name: Element[str] | None = None
    buyer_uscc: Element[str] | None = None
    seller_name: Element[str] | None = None
    seller_uscc: Element[str] | None = None
    amount_figures: Element[int] | None = None  # minor units, from 小写 / ¥ figures
    amount_capitals: Element[int] | None = None  # minor units, from 大写
    currency: Element[str] | None = None  # ISO 4217
    signing_date: Element[date] | None = None
    delivery: Element[DeliveryTerms] | None = None
    payment_term_days: Element[int] | None = None
    voucher_clause: Element[VoucherClause] | None = None  # None: the contract says nothing

    @property
    def voucher_clause_status(self) -> Literal["yes", "no", "absent"]:
        return "absent" if self.voucher_clause is None else self.voucher_clause.value

    def items(self) -> list[tuple[str, Element[object] | None]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


@dataclass(frozen=True, slots=True)
class PayableFacts:
    """A payable as SRM/ERP confirmed it. ``delivery_date`` is the goods receipt / acceptance date
    when the source gives one; the payment term is counted from it (else from ``payable_date``)."""

    payable_id: str
    contract_no: str
    buyer_name: str
    buyer_uscc: str
    seller_name: str
    seller_uscc: str
    amount_minor: int
    currency: str
    payable_date: date
    delivery_date: date | None = None


@dataclass(frozen=True, slots=True)
class VoucherFacts:
    """A voucher issued (or to be issued) against payables under the contract."""

    voucher_id: str
    amount_minor: int
    currency: str
    issue_date: date
    maturity: date
    payable_ids: tuple[str, ...] = ()
