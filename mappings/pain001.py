"""pain.001 credit transfer initiation (versions .001.03 and .001.09): render, validate, parse back.

``render_pain001`` turns the ledger's clearing instructions into a pain.001 file that validates
against the official ISO 20022 XSD shipped by the ``sepaxml`` package (loaded through
``importlib.resources``, never copied into this repository). MsgId and PmtInfId are SHA-256 digests
of the instructions themselves, and the instructions are ordered canonically, so rendering the
same instructions with the same ``created_at`` is byte-identical (safe re-sends: the bank sees the
same MsgId). ``parse_pain001`` reads a file back into instructions (round trips, sandbox banks).
No I/O other than reading the packaged XSD.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Literal

from lxml import etree

from ledger.canonical import Party, PaymentInstruction
from ledger.money import AmountError, to_decimal_text
from mappings.errors import FieldError, RenderError, UnsupportedFormat
from mappings.iso20022 import ISO_NS_PREFIX, Reader, Writer, iso_datetime
from mappings.xml import DEFAULT_LIMITS, XmlLimits, parse_document, secure_parser

Pain001Version = Literal["03", "09"]
SUPPORTED_VERSIONS: tuple[Pain001Version, ...] = ("03", "09")
_ID_RE = re.compile(r"\A[A-Za-z0-9/\-?:().,'+ ]{1,35}\Z", re.ASCII)  # SWIFT-safe Max35Text


def namespace(version: str) -> str:
    return f"{ISO_NS_PREFIX}pain.001.001.{version}"


@lru_cache(maxsize=4)
def schema(version: Pain001Version) -> etree.XMLSchema:
    """The official pain.001.001.<version> XSD from the installed ``sepaxml`` package."""
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedFormat(f"pain.001 version {version!r} not supported (03, 09)")
    xsd = resources.files("sepaxml").joinpath("schemas", f"pain.001.001.{version}.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd, secure_parser()))


def validate_pain001(data: bytes, version: Pain001Version, *, source: str = "pain.001") -> None:
    """Raise RenderError naming the first schema violation (line and message) if ``data`` is invalid."""
    _, root = parse_document(data, source=source)
    xsd = schema(version)
    if not xsd.validate(root):
        err = xsd.error_log.last_error
        raise RenderError(f"not valid against pain.001.001.{version}.xsd: {err.message}",
                          source=source, line=err.line, xpath=err.path, code="schema_invalid")


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def _instruction_key(i: PaymentInstruction) -> str:
    return "|".join((
        i.instruction_id, i.end_to_end_id, str(i.amount_minor), i.currency,
        i.requested_execution_date.isoformat(), repr(i.debtor), repr(i.creditor), i.remittance_info or "",
    ))


def derive_end_to_end_id(instruction_id: str) -> str:
    """A deterministic EndToEndId (<= 35 chars) for a clearing instruction id: ``E`` + 34 hex digits."""
    return "E" + _digest("e2e", instruction_id)[:34]


def message_id_for(instructions: Sequence[PaymentInstruction], version: str) -> str:
    """The MsgId of a pain.001 for these instructions: ``M`` + 34 hex digits of their digest."""
    keys = sorted(_instruction_key(i) for i in instructions)
    return "M" + _digest("pain.001", version, *keys)[:34]


def _check_instruction(n: int, i: PaymentInstruction) -> None:
    field = f"instructions[{n}]"
    for name, value in (("instruction_id", i.instruction_id), ("end_to_end_id", i.end_to_end_id)):
        if not _ID_RE.match(value):
            raise RenderError(f"{name} {value!r} is not 1-35 SWIFT characters", field=f"{field}.{name}")
    if i.amount_minor <= 0:
        raise RenderError(f"amount must be positive, got {i.amount_minor}", field=f"{field}.amount_minor")
    try:
        to_decimal_text(i.amount_minor, i.currency)
    except AmountError as e:
        raise RenderError(str(e), field=f"{field}.currency", code=e.code) from e
    if not i.debtor.account:
        raise RenderError("debtor account is required", field=f"{field}.debtor.account")
    if not i.creditor.account:
        raise RenderError("creditor account is required", field=f"{field}.creditor.account")
    if not i.creditor.name:
        raise RenderError("creditor name is required", field=f"{field}.creditor.name")
    if i.remittance_info is not None and len(i.remittance_info) > 140:
        raise RenderError("remittance_info longer than 140 characters", field=f"{field}.remittance_info")


def render_pain001(
    instructions: Sequence[PaymentInstruction],
    *,
    version: Pain001Version,
    initiating_party: Party,
    created_at: datetime,
    validate: bool = True,
) -> bytes:
    """Render instructions as one pain.001 message; one PmtInf per (debtor, date, currency).

    Deterministic: same instructions (in any order) + same ``created_at`` -> same bytes. Validates
    against the official XSD unless ``validate=False`` (tests of the validator only).
    """
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedFormat(f"pain.001 version {version!r} not supported (03, 09)", field="version")
    if not instructions:
        raise RenderError("no instructions to render", field="instructions")
    seen: set[str] = set()
    for n, i in enumerate(instructions):
        _check_instruction(n, i)
        if i.end_to_end_id in seen:
            raise RenderError(f"duplicate end_to_end_id {i.end_to_end_id!r}", field=f"instructions[{n}]")
        seen.add(i.end_to_end_id)
    bic_tag = "BIC" if version == "03" else "BICFI"
    ordered = sorted(instructions, key=lambda i: (
        i.requested_execution_date, i.currency, i.debtor.account or "", i.debtor.agent or "",
        i.debtor.name or "", i.debtor.uscc or "", i.instruction_id))
    groups: dict[tuple[date, str, Party], list[PaymentInstruction]] = {}
    for i in ordered:
        groups.setdefault((i.requested_execution_date, i.currency, i.debtor), []).append(i)

    w = Writer(namespace(version))
    doc = w.root("Document")
    body = w.sub(doc, "CstmrCdtTrfInitn")
    hdr = w.sub(body, "GrpHdr")
    msg_id = message_id_for(instructions, version)
    w.sub(hdr, "MsgId", msg_id)
    w.sub(hdr, "CreDtTm", iso_datetime(created_at))
    w.sub(hdr, "NbOfTxs", str(len(instructions)))
    w.sub(hdr, "CtrlSum", _ctrl_sum(instructions))
    w.party(hdr, "InitgPty", initiating_party)
    for (exec_date, _ccy, debtor), items in groups.items():
        pmt = w.sub(body, "PmtInf")
        w.sub(pmt, "PmtInfId", "P" + _digest(msg_id, *(i.instruction_id for i in items))[:34])
        w.sub(pmt, "PmtMtd", "TRF")
        w.sub(pmt, "NbOfTxs", str(len(items)))
        w.sub(pmt, "CtrlSum", _ctrl_sum(items))
        if version == "03":
            w.sub(pmt, "ReqdExctnDt", exec_date.isoformat())
        else:
            w.sub(w.sub(pmt, "ReqdExctnDt"), "Dt", exec_date.isoformat())
        w.party(pmt, "Dbtr", debtor)
        assert debtor.account is not None
        w.account(pmt, "DbtrAcct", debtor.account, field="debtor.account")
        w.agent(pmt, "DbtrAgt", debtor.agent, bic_tag=bic_tag, field="debtor.agent")
        for i in items:
            tx = w.sub(pmt, "CdtTrfTxInf")
            ids = w.sub(tx, "PmtId")
            w.sub(ids, "InstrId", i.instruction_id)
            w.sub(ids, "EndToEndId", i.end_to_end_id)
            w.amount(w.sub(tx, "Amt"), "InstdAmt", i.amount_minor, i.currency)
            if i.creditor.agent is not None:
                w.agent(tx, "CdtrAgt", i.creditor.agent, bic_tag=bic_tag, field="creditor.agent")
            w.party(tx, "Cdtr", i.creditor)
            assert i.creditor.account is not None
            w.account(tx, "CdtrAcct", i.creditor.account, field="creditor.account")
            if i.remittance_info:
                w.sub(w.sub(tx, "RmtInf"), "Ustrd", i.remittance_info)
    data: bytes = etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if validate:
        validate_pain001(data, version)
    return data


def _ctrl_sum(items: Sequence[PaymentInstruction]) -> str:
    # CtrlSum is a plain decimal sum; build it exactly from minor units (no float).
    from decimal import Decimal

    total = sum((Decimal(to_decimal_text(i.amount_minor, i.currency)) for i in items), Decimal(0))
    return format(total, "f")


def parse_pain001(data: bytes, *, source: str,
                  limits: XmlLimits = DEFAULT_LIMITS) -> tuple[str, list[PaymentInstruction]]:
    """Parse a pain.001 (.03/.09, or .10/.11 where the structure is the same) into (MsgId, instructions)."""
    prolog, root = parse_document(data, source=source, limits=limits)
    ns = prolog.namespace or ""
    if not ns.startswith(ISO_NS_PREFIX + "pain.001.001."):
        raise UnsupportedFormat(f"not a pain.001 document (namespace {ns!r})", source=source, line=1,
                                code="wrong_namespace")
    r = Reader(ns, source)
    body = r.find(root, "CstmrCdtTrfInitn")
    if body is None:
        raise FieldError("missing CstmrCdtTrfInitn", source=source, line=1, field="CstmrCdtTrfInitn",
                         code="missing_field")
    msg_id = r.required(body, "GrpHdr/MsgId")
    out: list[PaymentInstruction] = []
    for pmt in r.findall(body, "PmtInf"):
        exec_date = r.date(pmt, "ReqdExctnDt/Dt") or r.date(pmt, "ReqdExctnDt")
        if exec_date is None:
            raise FieldError("missing ReqdExctnDt", source=source, line=pmt.sourceline,
                             field="ReqdExctnDt", code="missing_field")
        d_name, d_uscc = r.party(pmt, "Dbtr")
        debtor = Party(name=d_name, account=r.account(pmt, "DbtrAcct"), agent=r.agent(pmt, "DbtrAgt"),
                       uscc=d_uscc)
        for tx in r.findall(pmt, "CdtTrfTxInf"):
            amount = r.amount(tx, "Amt/InstdAmt")
            if amount is None:
                raise FieldError("missing Amt/InstdAmt", source=source, line=tx.sourceline,
                                 field="InstdAmt", code="missing_field")
            c_name, c_uscc = r.party(tx, "Cdtr")
            out.append(PaymentInstruction(
                instruction_id=r.text(tx, "PmtId/InstrId") or r.required(tx, "PmtId/EndToEndId"),
                end_to_end_id=r.required(tx, "PmtId/EndToEndId"),
                amount_minor=amount[0], currency=amount[1],
                requested_execution_date=exec_date,
                debtor=debtor,
                creditor=Party(name=c_name, account=r.account(tx, "CdtrAcct"),
                               agent=r.agent(tx, "CdtrAgt"), uscc=c_uscc),
                remittance_info=r.text(tx, "RmtInf/Ustrd"),
            ))
    return msg_id, out
