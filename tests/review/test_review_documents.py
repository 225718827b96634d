"""Each document type end to end: generated contract -> reader -> element rules -> checks.

A handful of documents from the corpus generator (not the corpus): the text PDFs of every layout
must come out exactly; the scans (one each: scanned PDF with a red seal, PNG, JPEG, TIFF) through
Tesseract must give the fields listed for them, with evidence boxes on the page.
"""

from __future__ import annotations

from datetime import date

import pytest

from canonical.documents import DocumentText
from connectors.ocr import read_document
from connectors.ocr.tesseract import tesseract_path
from ledger.review.checks import review_contract
from mappings.contracts import extract_elements
from sandbox.contracts.generator import ContractTruth, CorpusItem, build_one

SEED = 15
needs_tesseract = pytest.mark.skipif(tesseract_path() is None, reason="tesseract not installed (./setup.sh)")


def values(truth: ContractTruth) -> dict[str, object]:
    return {
        "contract_no": truth.contract_no,
        "buyer_name": truth.buyer_name,
        "buyer_uscc": truth.buyer_uscc,
        "seller_name": truth.seller_name,
        "seller_uscc": truth.seller_uscc,
        "amount_figures": truth.amount_minor,
        "amount_capitals": truth.amount_minor,
        "currency": "CNY",
        "signing_date": truth.signing_date,
        "payment_term_days": truth.payment_term_days,
    }


def read(
    index: int, layout: str, fmt: str, planted: str | None = None, sealed: bool | None = None
) -> tuple[CorpusItem, DocumentText]:
    item, data = build_one(index, layout, fmt, planted, SEED, scan_seal=sealed)
    return item, read_document(data, source=item.file)


@pytest.mark.parametrize("layout", ["classic", "table", "equipment", "order"])
def test_text_pdf_every_layout_reads_exactly(layout: str) -> None:
    item, doc = read(1000 + len(layout), layout, "text_pdf")
    assert doc.kind == "text_pdf" and all(p.source == "text" for p in doc.pages)
    e = extract_elements(doc)
    got = {k: (v.value if v else None) for k, v in e.items()}
    for field, want in values(item.truth).items():
        assert got[field] == want, field
    assert e.delivery is not None
    assert e.delivery.value.deliver_by == item.truth.deliver_by
    assert e.delivery.value.acceptance_days == item.truth.acceptance_days
    assert e.voucher_clause_status == "yes"
    # evidence: the page, a box on it that holds the text the value came from, full confidence
    ev = e.seller_uscc.evidence  # type: ignore[union-attr]
    page = doc.pages[ev.page - 1]
    assert item.truth.seller_uscc in ev.text and ev.confidence == 1.0
    assert 0 <= ev.bbox.x0 < ev.bbox.x1 <= page.width and 0 <= ev.bbox.y0 < ev.bbox.y1 <= page.height
    result = review_contract(e, item.payable, other_payables=item.earlier_payables, vouchers=item.vouchers)
    assert result.clean, result.codes()


@pytest.mark.parametrize(
    ("planted", "code"),
    [("amount", "payable"), ("uscc", "seller_uscc_mismatch"), ("date", ""), ("clause", "voucher_clause")],
)
def test_text_pdf_planted_disagreements_are_caught(planted: str, code: str) -> None:
    item, doc = read(1100 + len(planted), "classic", "text_pdf", planted)
    result = review_contract(
        extract_elements(doc), item.payable, other_payables=item.earlier_payables, vouchers=item.vouchers
    )
    assert not result.clean
    assert any(code in c for c in result.codes()), result.codes()


def test_voucher_clause_no_and_absent_are_told_apart() -> None:
    for index in range(1200, 1230):
        item, data = build_one(index, "order", "text_pdf", "clause", SEED)
        e = extract_elements(read_document(data))
        assert e.voucher_clause_status == item.truth.voucher_clause


ALL = (
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
SCANS = [
    # (index, layout, format, sealed, fields that must be read exactly): what the default pipeline
    # reads on these four pages; a field left out is one it misses or reads unsure there (the
    # benchmark measures those rates). Their capital amounts contain 仟/捌/柒/叁, which chi_sim
    # cannot print: 2001, 2003 and 2004 are read through the chi_tra second reading.
    (
        2001,
        "equipment",
        "scanned_pdf",
        True,
        tuple(f for f in ALL if f != "seller_uscc"),
    ),  # seal over the date
    (2002, "order", "png", False, tuple(f for f in ALL if f != "amount_capitals")),
    (2003, "order", "jpeg", True, ALL),
    (2004, "table", "tiff", False, tuple(f for f in ALL if f not in ("buyer_name", "buyer_uscc"))),
]


@needs_tesseract
@pytest.mark.slow
@pytest.mark.parametrize(("index", "layout", "fmt", "sealed", "fields"), SCANS)
def test_scans_through_tesseract(
    index: int, layout: str, fmt: str, sealed: bool, fields: tuple[str, ...]
) -> None:
    item, doc = read(index, layout, fmt, sealed=sealed)
    assert doc.kind == ("scanned_pdf" if fmt == "scanned_pdf" else "image")
    assert all(p.source == "ocr" for p in doc.pages)
    e = extract_elements(doc)
    want = values(item.truth)
    for field in fields:
        el = getattr(e, field)
        assert el is not None and el.value == want[field], (field, el)
        assert 0.0 <= el.confidence <= 1.0
        page = doc.pages[el.evidence.page - 1]
        assert 0 <= el.evidence.bbox.x0 < el.evidence.bbox.x1 <= page.width + 1
    # whatever was misread or read unsure, the review never calls a scan clean on a bad element
    result = review_contract(e, item.payable, other_payables=item.earlier_payables, vouchers=item.vouchers)
    if any(el is None or el.confidence < 0.8 for _, el in e.items()):
        assert not result.clean
    assert isinstance(item.truth.signing_date, date)
