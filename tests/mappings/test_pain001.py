"""pain.001 rendering: valid against the official XSD (from the installed sepaxml package),
deterministic (byte-identical re-render), round-trips through the parser; bad instructions refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources

import pytest
from lxml import etree

from ledger.canonical import Party, PaymentInstruction, PaymentStatus
from mappings.errors import MappingError, RenderError
from mappings.pain001 import (
    derive_end_to_end_id,
    parse_pain001,
    render_pain001,
    schema,
    validate_pain001,
)
from mappings.pain002 import parse_pain002, render_pain002

OBLIGOR = Party(name="中交核心企业有限公司", account="6222020200001234567", agent="102100099996",
                uscc="91110000100000001W")
CREATED = datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def _instructions() -> list[PaymentInstruction]:
    return [
        PaymentInstruction("CLR-CV0001-P1", derive_end_to_end_id("CLR-CV0001-P1"), 100_000_50, "CNY",
                           date(2026, 12, 1), OBLIGOR,
                           Party(name="深圳供应商有限公司", account="6217000010001234567",
                                 agent="105584000005", uscc="91440300MA5ABCDE1H"),
                           "电子债权凭证 CV0001 到期清分"),
        PaymentInstruction("CLR-CV0002-P1", derive_end_to_end_id("CLR-CV0002-P1"), 8_000_000, "CNY",
                           date(2026, 12, 1), OBLIGOR,
                           Party(name="Shenzhen Supplier Co Ltd", account="DE89370400440532013000",
                                 agent="COBADEFFXXX")),
        PaymentInstruction("CLR-CV0003-P1", derive_end_to_end_id("CLR-CV0003-P1"), 1, "USD",
                           date(2026, 12, 2), OBLIGOR, Party(name="甲公司", account="12345")),
    ]


@pytest.mark.parametrize("version", ["03", "09"])
def test_render_is_valid_against_official_xsd(version: str) -> None:
    data = render_pain001(_instructions(), version=version, initiating_party=OBLIGOR,  # type: ignore[arg-type]
                          created_at=CREATED)
    # validate independently of the renderer's own check, straight from the installed package
    xsd_bytes = resources.files("sepaxml").joinpath("schemas", f"pain.001.001.{version}.xsd").read_bytes()
    xsd = etree.XMLSchema(etree.fromstring(xsd_bytes))
    doc = etree.fromstring(data)
    assert xsd.validate(doc), xsd.error_log
    assert doc.tag == f"{{urn:iso:std:iso:20022:tech:xsd:pain.001.001.{version}}}Document"
    # three groups: (2026-12-01, CNY), (2026-12-02, USD)... debtor identical
    assert len(doc.findall(".//{*}PmtInf")) == 2


@pytest.mark.parametrize("version", ["03", "09"])
def test_rerender_is_byte_identical_and_order_independent(version: str) -> None:
    items = _instructions()
    a = render_pain001(items, version=version, initiating_party=OBLIGOR, created_at=CREATED)  # type: ignore[arg-type]
    b = render_pain001(list(reversed(items)), version=version, initiating_party=OBLIGOR,  # type: ignore[arg-type]
                       created_at=CREATED)
    assert a == b
    changed = [dataclasses.replace(items[0], amount_minor=items[0].amount_minor + 1), *items[1:]]
    c = render_pain001(changed, version=version, initiating_party=OBLIGOR, created_at=CREATED)  # type: ignore[arg-type]
    assert parse_pain001(c, source="c")[0] != parse_pain001(a, source="a")[0], "MsgId follows content"


@pytest.mark.parametrize("version", ["03", "09"])
def test_round_trip_render_parse_gives_same_instructions(version: str) -> None:
    items = _instructions()
    data = render_pain001(items, version=version, initiating_party=OBLIGOR, created_at=CREATED)  # type: ignore[arg-type]
    msg_id, back = parse_pain001(data, source="rt.xml")
    assert sorted(back, key=lambda i: i.instruction_id) == sorted(items, key=lambda i: i.instruction_id)
    assert len(msg_id) == 35 and msg_id.startswith("M")


def test_end_to_end_ids_are_deterministic_and_short() -> None:
    assert derive_end_to_end_id("CLR-1") == derive_end_to_end_id("CLR-1")
    assert derive_end_to_end_id("CLR-1") != derive_end_to_end_id("CLR-2")
    assert len(derive_end_to_end_id("x" * 500)) == 35


def test_schema_violation_is_reported_with_line() -> None:
    data = render_pain001(_instructions(), version="09", initiating_party=OBLIGOR, created_at=CREATED)
    broken = data.replace(b"<PmtMtd>TRF</PmtMtd>", b"<PmtMtd>XXX</PmtMtd>")
    with pytest.raises(RenderError) as info:
        validate_pain001(broken, "09")
    assert info.value.code == "schema_invalid" and info.value.line is not None


@pytest.mark.parametrize(("change", "field"), [
    ({"amount_minor": 0}, "amount_minor"),
    ({"amount_minor": -5}, "amount_minor"),
    ({"currency": "XYZ"}, "currency"),
    ({"end_to_end_id": "x" * 36}, "end_to_end_id"),
    ({"end_to_end_id": "bad\nid"}, "end_to_end_id"),
    ({"instruction_id": ""}, "instruction_id"),
    ({"creditor": Party(name="n")}, "creditor.account"),
    ({"creditor": Party(account="1")}, "creditor.name"),
    ({"debtor": Party(name="d")}, "debtor.account"),
    ({"creditor": Party(name="n", account="1", agent="NOT-A-BIC")}, "creditor.agent"),
    ({"remittance_info": "r" * 141}, "remittance_info"),
])
def test_bad_instruction_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    bad = dataclasses.replace(_instructions()[0], **change)  # type: ignore[arg-type]
    with pytest.raises(MappingError) as info:
        render_pain001([bad], version="09", initiating_party=OBLIGOR, created_at=CREATED)
    assert info.value.field is not None and info.value.field.endswith(field)


def test_duplicates_naive_time_and_unknown_version_refused() -> None:
    items = _instructions()
    with pytest.raises(RenderError, match="duplicate"):
        render_pain001([items[0], items[0]], version="03", initiating_party=OBLIGOR, created_at=CREATED)
    with pytest.raises(RenderError, match="timezone"):
        render_pain001(items, version="03", initiating_party=OBLIGOR, created_at=datetime(2026, 1, 1))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(MappingError):
        render_pain001(items, version="05", initiating_party=OBLIGOR, created_at=CREATED)  # type: ignore[arg-type]
    with pytest.raises(RenderError):
        render_pain001([], version="03", initiating_party=OBLIGOR, created_at=CREATED)


def test_schemas_come_from_the_installed_package() -> None:
    assert schema("03") is schema("03")  # cached
    assert isinstance(schema("09"), etree.XMLSchema)


def test_pain002_render_parse_round_trip() -> None:
    statuses = [
        PaymentStatus("group", "MSG1", "PART"),
        PaymentStatus("payment", "MSG1", "ACSP", original_payment_info_id="P1"),
        PaymentStatus("transaction", "MSG1", "ACSC", original_payment_info_id="P1",
                      original_instruction_id="I1",
                      original_end_to_end_id="E1", amount_minor=100, currency="CNY"),
        PaymentStatus("transaction", "MSG1", "RJCT", original_payment_info_id="P1",
                      original_instruction_id="I2",
                      original_end_to_end_id="E2", reason_code="AC04", reason_info="closed account"),
        PaymentStatus("transaction", "MSG1", "PDNG", original_payment_info_id="P2",
                      original_end_to_end_id="E3",
                      reason_code="WAIT-CUTOFF"),
    ]
    for version in ("03", "10"):
        data = render_pain002(statuses, message_id="R1", created_at=datetime(2026, 12, 1, tzinfo=UTC),
                              version=version)  # type: ignore[arg-type]
        assert parse_pain002(data, source="r.xml") == statuses
    with pytest.raises(RenderError):
        render_pain002([*statuses, PaymentStatus("group", "MSG2", "ACCP")], message_id="R",
                       created_at=datetime(2026, 12, 1, tzinfo=UTC))
