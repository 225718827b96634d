"""Issue #23, mapping side: every amount through the one exact parser, identifiers and dates in
ASCII, SRM/bank JSON decoded strictly. One corpus per case of the issue:

1. over-precise amounts in camt ``<Amt>``, bank CSV, SRM and ERP are refused, never rounded (they
   were rounded past 28 significant digits);
3. full-width / Arabic-Indic digits in MT940 ``:61:``, camt and CSV, and non-ISO dates, are refused;
4. SRM records: JSON-number amounts (``100.5``, ``1e3``, ``1e999999``, a 5,000-digit integer), a
   key twice and a state that is not payable are refused per record, the rest of the page maps.

camt runs with the compiled accelerator and without (the reference), and both must agree.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mappings import camt, mt940
from mappings.errors import MappingError
from mappings.financing import parse_financing_decision
from mappings.payables import parse_erp_ap, parse_srm_payables
from mappings.registry import parse_registry_response
from mappings.statements import parse_statements, parse_statements_with_rejects

SAMPLES = Path(__file__).parent / "samples"
CAMT = (SAMPLES / "camt" / "camt053_v08_cny_full.xml").read_bytes()
MT = (SAMPLES / "mt940" / "mt940_generic_two_statements.sta").read_bytes()
CSV = (SAMPLES / "csv-generic" / "generic_utf8_bom.csv").read_bytes()
OB, SUP = "91110000100000001W", "91440300MA5ABCDE1H"


@pytest.fixture(params=["accelerated", "reference"])
def accel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "reference":
        monkeypatch.setattr(camt, "_ACCEL", None)
        monkeypatch.setattr(mt940, "_ACCEL", None)
    return str(request.param)


def _error(data: bytes, **kw: object) -> MappingError:
    with pytest.raises(MappingError) as info:
        parse_statements(data, source="s", **kw)  # type: ignore[arg-type]
    return info.value


# --- 1. over-precise and oversized amounts: refused, never rounded ------------------------------

@pytest.mark.parametrize(("text", "code"), [
    ("100000.50000000000000000000000000001", "over_precise"),   # 100000.50 after rounding before
    ("100000.5000000000000000000000000000", "over_precise"),    # 36 chars is fine; 64+ is not:
    ("1" * 70, "invalid_amount"),
    ("1" * 10**5, "invalid_amount"),                            # was decimal.Overflow / int() limit
    ("1E+5", "invalid_amount"),
])
def test_camt_amount_exact_or_refused(accel: str, text: str, code: str) -> None:
    data = CAMT.replace(b'<Amt Ccy="CNY">100000.50</Amt>', f'<Amt Ccy="CNY">{text}</Amt>'.encode(), 1)
    assert data != CAMT
    if text == "100000.5000000000000000000000000000":  # only zeros past the decimals: exact
        assert parse_statements(data, source="s", verify=False)[0].entries[0].amount_minor == 10000050
        return
    err = _error(data, verify=False)
    assert (err.code, err.field) == (code, "Ntry/Amt"), err


def test_csv_srm_erp_amounts_exact_or_refused() -> None:
    row = b"2026-12-01,2026-12-02,1500.00,EUR,2500.00,"
    bad = CSV.replace(row, b"2026-12-01,2026-12-02,1500.00000000000000000000000000001,EUR,2500.00,")
    sts, rejected = parse_statements_with_rejects(bad, source="c.csv", profile="csv-generic")
    assert [(r.line, r.reason, r.field) for r in rejected] == [(2, "over_precise", "amount")]
    assert len(sts[0].entries) == 2  # a bad FIRST row costs only itself (it failed the file before)
    page = {"payables": [
        {"payable_id": "A1", "obligor_uscc": OB, "supplier_uscc": SUP, "currency": "CNY",
         "amount": "999999999999.9999999999999999999"},
        {"payable_id": "A2", "obligor_uscc": OB, "supplier_uscc": SUP, "currency": "CNY",
         "amount": "1.00000000000000000000000000001"},
    ]}
    res = parse_srm_payables(json.dumps(page).encode(), source="p")
    assert res.records == [] and [r.reason for r in res.rejected] == ["over_precise", "over_precise"]
    erp = ("\ufeffpayable_id,obligor_uscc,supplier_uscc,amount,currency\n"
           f"E1,{OB},{SUP},12.300000000000000000000000000001,CNY\nE2,{OB},{SUP},１２.３０,CNY\n"
           f"E3,{OB},{SUP},12.30,CNY\n").encode()
    res2 = parse_erp_ap(erp, source="ap.csv")
    assert [(r.line, r.reason) for r in res2.rejected] == [(2, "over_precise"), (3, "invalid_amount")]
    assert [(p.payable_id, p.amount_minor) for p in res2.records] == [("E3", 1230)]


# --- 3. other scripts' digits and non-ISO dates ----------------------------------------------------

def test_mt940_full_width_digits_refused(accel: str) -> None:
    fw = MT.replace(b":61:2612011201D80000,NTRF", ":61:2612011201D８００００,NTRF".encode())
    assert fw != MT
    err = _error(fw)
    assert (err.code, err.field, err.line) == ("invalid_field", ":61:", 10), err
    tag = MT.replace(b":61:2612011201D80000,", ":６１:2612011201D80000,".encode())
    err = _error(tag)
    assert (err.code, err.field, err.line) == ("invalid_field", "tag", 10), err
    bal = MT.replace(b":60F:C261130CNY1000000,00", ":60F:C261130CNY１000000,00".encode())
    assert _error(bal).code == "invalid_field"
    seq = MT.replace(b":28C:101/1", ":28C:１01/1".encode())
    assert _error(seq).field == ":28C:"


@pytest.mark.parametrize(("old", "new", "code", "field"), [
    (b'<Amt Ccy="CNY">100000.50</Amt>', '<Amt Ccy="CNY">１００000.50</Amt>', "invalid_amount", "Ntry/Amt"),
    (b'<Amt Ccy="CNY">100000.50</Amt>', '<Amt Ccy="CNY">١٠٠٠٠٠.٥٠</Amt>', "invalid_amount", "Ntry/Amt"),
    (b"<BookgDt><Dt>2026-12-01</Dt>", "<BookgDt><Dt>20261201</Dt>", "invalid_date", "Ntry/BookgDt"),
    (b"<BookgDt><Dt>2026-12-01</Dt>", "<BookgDt><Dt>2026-W49-2</Dt>", "invalid_date", "Ntry/BookgDt"),
    (b"<BookgDt><Dt>2026-12-01</Dt>", "<BookgDt><Dt>２０２６-12-01</Dt>", "invalid_date", "Ntry/BookgDt"),
])
def test_camt_digits_and_dates(accel: str, old: bytes, new: str, code: str, field: str) -> None:
    data = CAMT.replace(old, new.encode(), 1)
    assert data != CAMT
    err = _error(data, verify=False)
    assert (err.code, err.field) == (code, field), err


def test_csv_digits_dates_and_controls() -> None:
    row = b"2026-12-01,2026-12-02,1500.00,EUR,2500.00,DE89370400440532013000,R1,"
    cases = [
        ("2026-12-01,2026-12-02,１５００.００,EUR,2500.00,DE89370400440532013000,R1,", "invalid_amount"),
        ("２０２６-12-01,2026-12-02,1500.00,EUR,2500.00,DE89370400440532013000,R1,", "invalid_date"),
        ("2026-12-01,2026-12-02,1500.00,EUR,2500.00,DE89370400440532013000,R\x01,", "invalid_character"),
    ]
    for new, code in cases:
        data = CSV.replace(row, new.encode())
        assert data != CSV
        _, rejected = parse_statements_with_rejects(data, source="c.csv", profile="csv-generic")
        assert [(r.line, r.reason) for r in rejected] == [(2, code)], new


# --- 4. SRM / bank JSON: strict, per record ----------------------------------------------------------

def _rec(pid: str, amount: str = '"10.00"', extra: str = "") -> str:
    return (f'{{"payable_id": "{pid}", "obligor_uscc": "{OB}", "supplier_uscc": "{SUP}", '
            f'"currency": "CNY", "amount": {amount}{extra}}}')


def test_srm_page_refuses_per_record_and_maps_the_rest() -> None:
    records = [
        (_rec("OK1"), None),
        (_rec("F1", "100.5"), "invalid_amount"),
        (_rec("F2", "1e3"), "invalid_amount"),
        (_rec("F3", "1e999999"), "invalid_amount"),      # escaped the mapping and failed the page
        (_rec("F4", "1" * 5000), "invalid_amount"),      # an int literal beyond Python's 4,300 digits
        (_rec("F5", "100"), "invalid_amount"),           # integers too: the contract says text
        (_rec("F6", "NaN"), "invalid_amount"),
        (_rec("D1", extra=', "amount": "99999.00"'), "duplicate_field"),
        (_rec("D2", extra=', "supplier": {"uscc": "x", "uscc": "y"}'), "duplicate_field"),
        (_rec("S1", extra=', "status": "DRAFT"'), "not_payable"),
        (_rec("S2", extra=', "status": "CANCELLED"'), "not_payable"),
        (_rec("S3", extra=', "status": "confirmed"'), "not_payable"),
        (_rec("OK2", extra=', "status": "CONFIRMED"'), None),
        (_rec("N\\u0000UL"), "invalid_character"),
        (_rec("SU", extra=', "supplier_name": "\\ud800"'), "invalid_character"),
        (_rec("DT", extra=', "due_date": "20270301x"'), "invalid_date"),
        (_rec("FW", '"１０.００"'), "invalid_amount"),
        (_rec("OK3", extra=', "due_date": "20270301"'), None),   # ERP/SRM date forms stay accepted
    ]
    page = ('{"payables": [' + ", ".join(r for r, _ in records) + "]}").encode()
    res = parse_srm_payables(page, source="page.json")
    assert [p.payable_id for p in res.records] == ["OK1", "OK2", "OK3"]
    want = [(n, code) for n, (_, code) in enumerate(records, start=1) if code is not None]
    assert [(r.line, r.reason) for r in res.rejected] == want
    assert all(r.message.isprintable() for r in res.rejected)
    by_line = {r.line: r for r in res.rejected}
    # the raw record is the sender's: a numeric amount stays a number, so a replay is refused again
    raw = by_line[2].raw
    assert b'"amount": 100.5' in raw and json.loads(raw)["amount"] == 100.5
    again = parse_srm_payables(b"[" + raw + b"]", source="replay")
    assert [r.reason for r in again.rejected] == ["invalid_amount"]
    assert b'"amount": 1e999999' in by_line[4].raw
    assert base64.b64encode(by_line[15].raw)  # a lone surrogate still gives valid UTF-8 bytes
    by_line[15].raw.decode("utf-8")


@pytest.mark.parametrize(("doc", "code"), [
    (b'{"payables": [], "payables": [' + _rec("X").encode() + b"]}", "duplicate_field"),
    (b"[" * 100 + b"]" * 100, "too_deep"),
    (b'{"payables": [\xff]}', "bad_encoding"),
    (b'{"payables": [', "malformed_json"),
])
def test_srm_page_level_refusals(doc: bytes, code: str) -> None:
    with pytest.raises(MappingError) as info:
        parse_srm_payables(doc, source="page.json")
    assert info.value.code == code


def test_bank_financing_and_registry_json_strict() -> None:
    base = {"request_id": "R1", "decision": "DISBURSED", "currency": "CNY", "amount": "100.00",
            "interest": "1.00", "net_amount": "99.00", "value_date": "2026-12-01"}
    assert parse_financing_decision(json.dumps(base).encode(), source="d").amount_minor == 10000
    for doc, code, field in [
        (json.dumps({**base, "amount": 100.0}), "invalid_amount", "amount"),
        (json.dumps(base)[:-1] + ', "amount": "1000.00"}', "duplicate_field", "amount"),
        (json.dumps({**base, "annual_rate": "３.５"}), "invalid_field", "annual_rate"),
        (json.dumps({**base, "annual_rate": "1E-2"}), "invalid_field", "annual_rate"),
        (json.dumps({**base, "value_date": "2026-W49-2"}), "invalid_date", "value_date"),
    ]:
        with pytest.raises(MappingError) as info:
            parse_financing_decision(doc.encode(), source="d")
        assert (info.value.code, info.value.field) == (code, field), doc
    reg = b'{"request_id": "R", "operation": "register", "status": "REGISTERED", "registration_no": "A",' \
          b' "registration_no": "B"}'
    with pytest.raises(MappingError) as info:
        parse_registry_response(reg, source="r")
    assert (info.value.code, info.value.field) == ("duplicate_field", "registration_no")
