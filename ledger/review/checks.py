"""The review checks: contract elements vs the payable and vouchers that rest on the contract.

``review_contract(elements, payable, ...)`` returns a ``ReviewResult``: ``clean`` only when every
check passed on elements read with enough confidence; otherwise each ``Disagreement`` carries the
check's code, the field, what the contract says, what the payable/voucher says, and the evidence
(page, box, text, confidence) to show a reviewer next to it. A missing element or one read below
``ReviewPolicy.min_confidence`` is a disagreement, never a pass.

Codes, in the order they are reported:
  element_missing, low_confidence, contract_no_mismatch, buyer_uscc_mismatch, seller_uscc_mismatch,
  buyer_name_mismatch, seller_name_mismatch, currency_mismatch, capitals_mismatch,
  payable_over_contract, payables_over_contract, vouchers_over_contract, payable_before_signing,
  delivery_after_payable, maturity_beyond_term, voucher_clause_absent, voucher_clause_refused.

Pure functions over canonical types; never imports mappings or connectors.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from canonical.contract import ContractElements, Element, Evidence, PayableFacts, VoucherFacts

# The elements each check relies on. All of them must be present and confident for a clean result.
REQUIRED = (
    "contract_no",
    "buyer_name",
    "buyer_uscc",
    "seller_name",
    "seller_uscc",
    "amount_figures",
    "amount_capitals",
    "currency",
    "signing_date",
    "payment_term_days",
)


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    min_confidence: float = 0.80
    require_delivery_terms: bool = False  # a delivery clause is read when present; not every contract has one

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError("min_confidence must be within 0..1")


@dataclass(frozen=True, slots=True)
class Disagreement:
    code: str
    field: str
    message: str
    contract_value: object = None
    fact_value: object = None
    evidence: tuple[Evidence, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "field": self.field,
            "message": self.message,
            "contract_value": _plain(self.contract_value),
            "fact_value": _plain(self.fact_value),
            "evidence": [e.as_dict() for e in self.evidence],
        }


@dataclass(frozen=True, slots=True)
class ReviewResult:
    payable_id: str
    disagreements: tuple[Disagreement, ...]

    @property
    def clean(self) -> bool:
        return not self.disagreements

    def codes(self) -> list[str]:
        return [d.code for d in self.disagreements]


def _plain(v: object) -> object:
    if v is None or isinstance(v, (str, int, bool)):
        return v
    return str(v)


def normalise_name(name: str) -> str:
    """Names compare after NFKC (full-width brackets/letters) and without whitespace."""
    return "".join(unicodedata.normalize("NFKC", name).split())


def _ev(e: Element[Any] | None) -> tuple[Evidence, ...]:
    return (e.evidence,) if e is not None else ()


def review_contract(
    elements: ContractElements,
    payable: PayableFacts,
    *,
    other_payables: Sequence[PayableFacts] = (),
    vouchers: Sequence[VoucherFacts] = (),
    policy: ReviewPolicy | None = None,
) -> ReviewResult:
    """Check ``payable`` (and every payable and voucher under the same contract) against it.

    ``other_payables``: the contract's other payables (not including ``payable``); ``vouchers``:
    every voucher issued or to be issued under the contract; those backed by ``payable`` are
    held to its dates.
    """
    policy = policy or ReviewPolicy()
    out: list[Disagreement] = []
    e = elements

    for name in (*REQUIRED, *(("delivery",) if policy.require_delivery_terms else ())):
        el = getattr(e, name)
        if el is None:
            out.append(Disagreement("element_missing", name, f"{name} not found in the contract"))
    for name, el in e.items():
        if el is not None and el.confidence < policy.min_confidence:
            out.append(
                Disagreement(
                    "low_confidence",
                    name,
                    f"{name} read with confidence {el.confidence:.2f} < {policy.min_confidence:.2f}",
                    el.value,
                    None,
                    (el.evidence,),
                )
            )

    def differ(code: str, field: str, el: Element[str] | None, fact: str, *, names: bool = False) -> None:
        if el is None:
            return
        a, b = (normalise_name(el.value), normalise_name(fact)) if names else (el.value, fact)
        if a != b:
            out.append(
                Disagreement(
                    code,
                    field,
                    f"contract says {el.value!r}, payable says {fact!r}",
                    el.value,
                    fact,
                    (el.evidence,),
                )
            )

    differ("contract_no_mismatch", "contract_no", e.contract_no, payable.contract_no)
    differ("buyer_uscc_mismatch", "buyer_uscc", e.buyer_uscc, payable.buyer_uscc)
    differ("seller_uscc_mismatch", "seller_uscc", e.seller_uscc, payable.seller_uscc)
    differ("buyer_name_mismatch", "buyer_name", e.buyer_name, payable.buyer_name, names=True)
    differ("seller_name_mismatch", "seller_name", e.seller_name, payable.seller_name, names=True)
    differ("currency_mismatch", "currency", e.currency, payable.currency)

    fig, cap = e.amount_figures, e.amount_capitals
    if fig is not None and cap is not None and fig.value != cap.value:
        out.append(
            Disagreement(
                "capitals_mismatch",
                "amount_capitals",
                f"figures say {fig.value} minor units, capitals say {cap.value}",
                fig.value,
                cap.value,
                (fig.evidence, cap.evidence),
            )
        )
    # The contract amount the payables are held to: the figures, and the capitals when they differ
    # (the lower of the two: a disagreement is already reported, this keeps the sums honest).
    limits = [x.value for x in (fig, cap) if x is not None]
    if limits:
        limit = min(limits)
        ev = _ev(fig) + _ev(cap)
        if payable.currency == (e.currency.value if e.currency else payable.currency):
            if payable.amount_minor > limit:
                out.append(
                    Disagreement(
                        "payable_over_contract",
                        "amount_figures",
                        f"payable {payable.amount_minor} above the contract amount {limit}",
                        limit,
                        payable.amount_minor,
                        ev,
                    )
                )
            total = payable.amount_minor + sum(
                p.amount_minor for p in other_payables if p.payable_id != payable.payable_id
            )
            if total > limit:
                out.append(
                    Disagreement(
                        "payables_over_contract",
                        "amount_figures",
                        f"payables under the contract total {total}, above {limit}",
                        limit,
                        total,
                        ev,
                    )
                )
            vtotal = sum(v.amount_minor for v in vouchers)
            if vtotal > limit:
                out.append(
                    Disagreement(
                        "vouchers_over_contract",
                        "amount_figures",
                        f"vouchers under the contract total {vtotal}, above {limit}",
                        limit,
                        vtotal,
                        ev,
                    )
                )

    if e.signing_date is not None:
        signed = e.signing_date.value
        first = min(d for d in (payable.delivery_date, payable.payable_date) if d is not None)
        if first < signed:
            out.append(
                Disagreement(
                    "payable_before_signing",
                    "signing_date",
                    f"payable/delivery dated {first} before the contract was signed on {signed}",
                    signed,
                    first,
                    (e.signing_date.evidence,),
                )
            )
    if payable.delivery_date is not None and payable.delivery_date > payable.payable_date:
        out.append(
            Disagreement(
                "delivery_after_payable",
                "delivery",
                f"delivery on {payable.delivery_date} after the payable date {payable.payable_date}",
                None,
                payable.delivery_date,
                _ev(e.delivery),
            )
        )
    if e.payment_term_days is not None:
        base = payable.delivery_date or payable.payable_date
        due = base + timedelta(days=e.payment_term_days.value)
        for v in vouchers:
            if v.payable_ids and payable.payable_id not in v.payable_ids:
                continue
            if v.maturity > due:
                out.append(
                    Disagreement(
                        "maturity_beyond_term",
                        "payment_term_days",
                        f"voucher {v.voucher_id} matures {v.maturity}, after {due} "
                        f"({e.payment_term_days.value} days from {base})",
                        due,
                        v.maturity,
                        (e.payment_term_days.evidence,),
                    )
                )

    if e.voucher_clause is None:
        out.append(
            Disagreement(
                "voucher_clause_absent",
                "voucher_clause",
                "the contract does not allow payment by electronic receivable vouchers",
            )
        )
    elif e.voucher_clause.value == "no":
        out.append(
            Disagreement(
                "voucher_clause_refused",
                "voucher_clause",
                "the contract excludes payment by electronic receivable vouchers",
                "no",
                None,
                (e.voucher_clause.evidence,),
            )
        )
    return ReviewResult(payable.payable_id, tuple(out))
