"""SRM/ERP payables, GL journal files, financing decisions and registry packets/responses."""

from __future__ import annotations

import json
from datetime import date

import pytest
from lxml import etree

from ledger.canonical import (
    FinancingDecision,
    GlJournal,
    GlLine,
    GlPosting,
    Party,
    RegistrationRequest,
)
from mappings.errors import FieldError, RenderError
from mappings.financing import parse_financing_decision, render_financing_decision
from mappings.gl import parse_gl_journal, render_gl_journal
from mappings.payables import parse_erp_ap, parse_srm_payables
from mappings.registry import PACKET_NS, render_registration_packet

OBLIGOR, SUPPLIER, BANK = "91110000100000001W", "91440300MA5ABCDE1H", "91310000MA1FL7Q8XK"


def _journal() -> GlJournal:
    return GlJournal("GL-20261201", "1000", date(2026, 12, 1), (
        GlPosting("JE-1", "issuance", date(2026, 12, 1), "开立 CV0001", (
            GlLine("2202.01", 100_000_00, 0, "CNY", OBLIGOR, "CV0001", None, "应付账款转应付凭证"),
            GlLine("2202.99", 0, 100_000_00, "CNY", SUPPLIER, "CV0001", "CV0001-P1"),
        )),
        GlPosting("JE-2", "clearing", date(2026, 12, 1), "清分 CV0001", (
            GlLine("2202.99", 100_000_00, 0, "CNY", SUPPLIER, "CV0001", "CV0001-P1"),
            GlLine("1002.01", 0, 99_000_00, "CNY"),
            GlLine("1002.02", 0, 1_000_00, "CNY", memo="手续费, fee"),
        )),
    ))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_gl_journal_round_trip(encoding: str) -> None:
    data = render_gl_journal(_journal(), encoding=encoding)  # type: ignore[arg-type]
    assert parse_gl_journal(data, source="gl.csv") == _journal()
    assert render_gl_journal(_journal(), encoding=encoding) == data  # deterministic  # type: ignore[arg-type]


def test_gl_unbalanced_or_two_sided_posting_refused() -> None:
    bad = GlPosting("JE-9", "financing", date(2026, 12, 1), "x",
                    (GlLine("1", 100, 0, "CNY"), GlLine("2", 0, 99, "CNY")))
    with pytest.raises(RenderError, match="does not balance"):
        render_gl_journal(GlJournal("J", "1000", date(2026, 12, 1), (bad,)))
    two_sided = GlPosting("JE-8", "other", date(2026, 12, 1), "x",
                          (GlLine("1", 100, 100, "CNY"), GlLine("2", 0, 0, "CNY")))
    with pytest.raises(RenderError, match="exactly one"):
        render_gl_journal(GlJournal("J", "1000", date(2026, 12, 1), (two_sided,)))


def test_srm_document_level_errors() -> None:
    with pytest.raises(FieldError) as info:
        parse_srm_payables(b'{"payables": 5}', source="p.json")
    assert info.value.field == "payables"
    with pytest.raises(FieldError) as info:
        parse_srm_payables(b"\xff\xfe", source="p.json")
    assert info.value.code == "bad_encoding"


def test_srm_float_free_and_quarantine_keeps_raw() -> None:
    doc = [{"payable_id": "A", "obligor_uscc": OBLIGOR, "supplier_uscc": SUPPLIER, "amount": "0.10",
            "currency": "CNY"},
           {"payable_id": "B", "obligor_uscc": OBLIGOR, "supplier_uscc": SUPPLIER, "amount": True,
            "currency": "CNY"}]
    r = parse_srm_payables(json.dumps(doc).encode(), source="p.json")
    assert [p.amount_minor for p in r.records] == [10]
    (rej,) = r.rejected
    assert rej.line == 2 and rej.reason == "invalid_amount" and json.loads(rej.raw)["payable_id"] == "B"


def test_erp_ap_missing_columns_and_bad_encoding_row() -> None:
    with pytest.raises(FieldError) as info:
        parse_erp_ap("应付单号,金额\r\nA,1\r\n".encode("gb18030"), source="ap.csv")
    assert info.value.code == "missing_column"
    head = "payable_id,obligor_uscc,supplier_uscc,amount,currency\n"
    good = f"A,{OBLIGOR},{SUPPLIER},1.00,CNY\n"
    data = head.encode() + good.encode() + b"B,\xff\xfe,x,1,CNY\n" + good.replace("A,", "C,").encode()
    r = parse_erp_ap(data, source="ap.csv", encoding="utf-8")
    assert [p.payable_id for p in r.records] == ["A", "C"]
    assert [(x.line, x.reason) for x in r.rejected] == [(3, "bad_encoding")]
    assert r.rejected[0].raw == b"B,\xff\xfe,x,1,CNY\n"


def test_financing_decision_render_parse_round_trip() -> None:
    d = FinancingDecision("FIN-1", "B-1", "DISBURSED", "CV1-P1", 100_000_00, "CNY", interest_minor=1_150_00,
                          net_amount_minor=98_850_00, annual_rate="0.0345", day_count="ACT/360",
                          with_recourse=True, value_date=date(2026, 12, 1))
    assert parse_financing_decision(render_financing_decision(d), source="d.json") == d


@pytest.mark.parametrize(("doc", "field"), [
    ({"request_id": "R", "decision": "MAYBE"}, "decision"),
    ({"request_id": "R", "decision": "REJECTED"}, "reason"),
    ({"request_id": "R", "decision": "DISBURSED", "amount": "1.00", "currency": "CNY"}, "value_date"),
    ({"request_id": "R", "decision": "APPROVED", "amount": "1.001", "currency": "CNY"}, "amount"),
    ({"request_id": "R", "decision": "APPROVED", "annual_rate": "abc"}, "annual_rate"),
    ({"request_id": "R", "decision": "APPROVED", "with_recourse": "yes"}, "with_recourse"),
])
def test_financing_decision_errors_name_the_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(FieldError) as info:
        parse_financing_decision(json.dumps(doc).encode(), source="d.json")
    assert info.value.field == field and info.value.source == "d.json"


def _request(**change: object) -> RegistrationRequest:
    base = dict(request_id="REG-1", registration_type="transfer",
                transferor=Party(name="深圳供应商有限公司", uscc=SUPPLIER),
                transferee=Party(name="某银行保理中心", uscc=BANK),
                obligor=Party(name="中交核心企业有限公司", uscc=OBLIGOR),
                voucher_id="CV0001", piece_id="CV0001-P1", amount_minor=100_000_00, currency="CNY",
                maturity_date=date(2027, 3, 1), period_months=12)
    base.update(change)
    return RegistrationRequest(**base)  # type: ignore[arg-type]


def test_registration_packet_json_and_xml() -> None:
    j = json.loads(render_registration_packet(_request()))
    assert j["collateral"]["amount"] == "100000.00" and j["transferee"]["uscc"] == BANK
    assert render_registration_packet(_request()) == render_registration_packet(_request())
    x = etree.fromstring(render_registration_packet(_request(), format="xml"))
    assert x.tag == f"{{{PACKET_NS}}}RegistrationPacket"
    assert x.findtext(f"{{{PACKET_NS}}}Collateral/{{{PACKET_NS}}}Amount") == "100000.00"


@pytest.mark.parametrize(("change", "field"), [
    ({"transferee": Party(name="x", uscc="91310000MA1FL7Q8XA")}, "transferee.uscc"),
    ({"obligor": Party(uscc=OBLIGOR)}, "obligor.name"),
    ({"amount_minor": 0}, "amount_minor"),
    ({"period_months": 0}, "period_months"),
])
def test_registration_packet_refuses_bad_requests(change: dict[str, object], field: str) -> None:
    with pytest.raises(RenderError) as info:
        render_registration_packet(_request(**change))
    assert info.value.field == field
