"""Each review check, on elements built by hand (no documents): the checks are pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from canonical.contract import ContractElements, DeliveryTerms, Element, Evidence, PayableFacts, VoucherFacts
from canonical.documents import BBox
from ledger.review.checks import ReviewPolicy, review_contract

BUYER, SELLER = "911100006000373418", "91310000MA1FL4U02X"


def el(value: object, conf: float = 1.0, page: int = 1) -> Element[object]:
    return Element(value, Evidence(page, BBox(10, 20, 300, 34), f"line with {value}", conf))


def contract(**over: object) -> ContractElements:
    base = dict(
        contract_no=el("CG-2025-00001"),
        buyer_name=el("上海宏达建设工程有限公司"),
        buyer_uscc=el(BUYER),
        seller_name=el("武汉华信电缆股份有限公司"),
        seller_uscc=el(SELLER),
        amount_figures=el(100_000_000),
        amount_capitals=el(100_000_000),
        currency=el("CNY"),
        signing_date=el(date(2025, 3, 1)),
        delivery=el(DeliveryTerms("应于2025年4月1日前交付", date(2025, 4, 1), 7)),
        payment_term_days=el(60),
        voucher_clause=el("yes"),
    )
    base.update(over)
    return ContractElements(**base)  # type: ignore[arg-type]


PAYABLE = PayableFacts(
    "P1",
    "CG-2025-00001",
    "上海宏达建设工程有限公司",
    BUYER,
    "武汉华信电缆股份有限公司",
    SELLER,
    40_000_000,
    "CNY",
    date(2025, 4, 5),
    date(2025, 3, 28),
)
VOUCHER = VoucherFacts("V1", 40_000_000, "CNY", date(2025, 4, 6), date(2025, 5, 20), ("P1",))


def codes(elements: ContractElements, payable: PayableFacts = PAYABLE, **kw: object) -> list[str]:
    kw.setdefault("vouchers", [VOUCHER])
    return review_contract(elements, payable, **kw).codes()  # type: ignore[arg-type]


def test_consistent_contract_is_clean() -> None:
    result = review_contract(contract(), PAYABLE, vouchers=[VOUCHER])
    assert result.clean and result.disagreements == ()


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("buyer_uscc", "buyer_uscc_mismatch"),
        ("seller_uscc", "seller_uscc_mismatch"),
        ("buyer_name", "buyer_name_mismatch"),
        ("seller_name", "seller_name_mismatch"),
        ("contract_no", "contract_no_mismatch"),
        ("currency", "currency_mismatch"),
    ],
)
def test_parties_and_identifiers_must_match(field: str, code: str) -> None:
    other = {
        "buyer_uscc": SELLER,
        "seller_uscc": BUYER,
        "buyer_name": "别的公司",
        "seller_name": "别的公司",
        "contract_no": "CG-2025-99999",
        "currency": "USD",
    }[field]
    result = review_contract(contract(), replace(PAYABLE, **{field: other}), vouchers=[VOUCHER])
    assert result.codes() == [code]
    d = result.disagreements[0]
    assert d.field == field and d.fact_value == other and d.evidence[0].page == 1


def test_names_compare_after_width_normalisation() -> None:
    elements = contract(seller_name=el("中建三局（上海）有限公司"))
    assert codes(elements, replace(PAYABLE, seller_name="中建三局(上海)有限公司")) == []


def test_payable_above_contract_amount() -> None:
    assert codes(contract(), replace(PAYABLE, amount_minor=100_000_001), vouchers=[]) == [
        "payable_over_contract",
        "payables_over_contract",
    ]
    assert codes(contract(), replace(PAYABLE, amount_minor=100_000_000), vouchers=[]) == []


def test_sum_of_payables_and_of_vouchers_under_the_contract() -> None:
    earlier = replace(PAYABLE, payable_id="P0", amount_minor=60_000_001)
    assert codes(contract(), other_payables=[earlier]) == ["payables_over_contract"]
    assert codes(contract(), other_payables=[replace(earlier, amount_minor=60_000_000)]) == []
    v2 = replace(VOUCHER, voucher_id="V0", amount_minor=60_000_001, payable_ids=("P0",))
    assert codes(contract(), vouchers=[VOUCHER, v2]) == ["vouchers_over_contract"]


def test_figures_and_capitals_must_agree_and_the_lower_binds() -> None:
    elements = contract(amount_capitals=el(10_000_000))
    result = review_contract(elements, PAYABLE, vouchers=[VOUCHER])
    assert result.codes() == [
        "capitals_mismatch",
        "payable_over_contract",
        "payables_over_contract",
        "vouchers_over_contract",
    ]
    assert len(result.disagreements[0].evidence) == 2


def test_dates_delivery_before_payable_and_after_signing() -> None:
    early = [replace(VOUCHER, maturity=date(2025, 4, 10))]
    assert codes(contract(), replace(PAYABLE, delivery_date=date(2025, 2, 20)), vouchers=early) == [
        "payable_before_signing"
    ]
    assert codes(contract(), replace(PAYABLE, delivery_date=date(2025, 4, 6))) == ["delivery_after_payable"]


def test_maturity_within_the_payment_term() -> None:
    # 60 days from delivery on 2025-03-28 is 2025-05-27
    assert codes(contract(), vouchers=[replace(VOUCHER, maturity=date(2025, 5, 27))]) == []
    result = review_contract(contract(), PAYABLE, vouchers=[replace(VOUCHER, maturity=date(2025, 5, 28))])
    assert result.codes() == ["maturity_beyond_term"]
    assert result.disagreements[0].contract_value == date(2025, 5, 27)
    # without a delivery date the term counts from the payable date
    assert (
        codes(
            contract(),
            replace(PAYABLE, delivery_date=None),
            vouchers=[replace(VOUCHER, maturity=date(2025, 6, 4))],
        )
        == []
    )
    # vouchers backed by another payable are not held to this payable's dates
    other = replace(VOUCHER, voucher_id="V9", amount_minor=1, maturity=date(2026, 1, 1), payable_ids=("P9",))
    assert codes(contract(), vouchers=[VOUCHER, other]) == []


def test_voucher_clause_absent_or_refused() -> None:
    assert codes(contract(voucher_clause=None)) == ["voucher_clause_absent"]
    assert codes(contract(voucher_clause=el("no"))) == ["voucher_clause_refused"]


def test_missing_element_is_a_disagreement_never_a_pass() -> None:
    result = review_contract(contract(seller_uscc=None, payment_term_days=None), PAYABLE, vouchers=[VOUCHER])
    assert not result.clean
    assert result.codes() == ["element_missing", "element_missing"]
    assert {d.field for d in result.disagreements} == {"seller_uscc", "payment_term_days"}


def test_low_confidence_is_a_disagreement_even_when_the_value_matches() -> None:
    result = review_contract(contract(seller_uscc=el(SELLER, conf=0.79)), PAYABLE, vouchers=[VOUCHER])
    assert result.codes() == ["low_confidence"]
    assert result.disagreements[0].evidence[0].confidence == 0.79
    assert review_contract(
        contract(seller_uscc=el(SELLER, conf=0.79)),
        PAYABLE,
        vouchers=[VOUCHER],
        policy=ReviewPolicy(min_confidence=0.7),
    ).clean


def test_disagreements_serialise_with_their_evidence() -> None:
    d = review_contract(
        contract(voucher_clause=el("no", conf=0.95)), PAYABLE, vouchers=[VOUCHER]
    ).disagreements[0]
    data = d.as_dict()
    assert data["code"] == "voucher_clause_refused"
    assert data["evidence"] == [
        {"page": 1, "bbox": [10.0, 20.0, 300.0, 34.0], "text": "line with no", "confidence": 0.95}
    ]
