"""Receivables registry (中登网): registration packets out (JSON or XML), responses in (JSON).

``render_registration_packet`` turns a canonical ``RegistrationRequest`` into the packet cvhub files
(through a third-party registry API, or handed to an operator who files it by hand), as JSON or
as XML in cvhub's own namespace ``urn:cvhub:registry:registration:1`` (both documented in
``docs/mappings.md``). ``parse_registry_response`` reads the registry adapter's answer to
register / query / amend / cancel. Parties are checked (USCC check digits) before anything is
rendered. No I/O.

The packet carries the parties' names and the description **exactly** (a registration is a legal
filing searched by name: no apostrophe is added to a name that starts with ``=`` or ``-``; JSON and
XML escaping keep every value inert for the systems that read them). What the packet refuses is text
that would be filed under a disguise or cannot be carried at all: control characters, bidi
overrides/isolates, line separators, lone surrogates (``ledger.inert.has_unsafe_chars``), as a
``RenderError`` naming the field (docs/mappings.md, docs/recon.md "Inert text").
"""

from __future__ import annotations

import json
from typing import Any, Literal

from lxml import etree
from stdnum.cn import uscc as _uscc

from ledger.canonical import Party, RegistrationRequest, RegistryConflict, RegistryResponse
from ledger.inert import has_unsafe_chars
from ledger.money import to_decimal_text
from mappings import batch
from mappings.batch import RecordError
from mappings.errors import FieldError, RenderError
from mappings.json_records import first_duplicate, loads_records

PACKET_NS = "urn:cvhub:registry:registration:1"
STATUSES = ("REGISTERED", "AMENDED", "CANCELLED", "FOUND", "NOT_FOUND", "PENDING", "REJECTED")
OPERATIONS = ("register", "query", "amend", "cancel")


def _party_json(p: Party, field: str) -> dict[str, str | None]:
    if p.uscc is None or not _uscc.is_valid(p.uscc):
        raise RenderError(f"{field} needs a valid unified social credit code, got {p.uscc!r}",
                          field=f"{field}.uscc")
    if not p.name:
        raise RenderError(f"{field} needs a name", field=f"{field}.name")
    return {"name": p.name, "uscc": p.uscc, "account": p.account, "agent": p.agent}


def _refuse_unsafe_text(value: Any, field: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_unsafe_text(v, f"{field}.{k}" if field else k)
    elif isinstance(value, str) and has_unsafe_chars(value):
        bad = next(ch for ch in value if has_unsafe_chars(ch))
        raise RenderError(f"{field} contains the control or invisible formatting character "
                          f"U+{ord(bad):04X}; the registry would file a disguised or broken text",
                          field=field)


def registration_packet(req: RegistrationRequest) -> dict[str, Any]:
    """The packet as JSON-ready data (keys sorted when dumped); raises RenderError naming the
    field for an invalid party, amount or period, or text with control/bidi characters."""
    if req.amount_minor <= 0:
        raise RenderError("amount must be positive", field="amount_minor")
    if not 1 <= req.period_months <= 360:
        raise RenderError("period_months must be 1..360", field="period_months")
    packet = {
        "schema": "cvhub.registry.registration/1",
        "request_id": req.request_id,
        "registration_type": req.registration_type,
        "amends_registration_no": req.amends_registration_no,
        "transferor": _party_json(req.transferor, "transferor"),
        "transferee": _party_json(req.transferee, "transferee"),
        "obligor": _party_json(req.obligor, "obligor"),
        "collateral": {
            "voucher_id": req.voucher_id, "piece_id": req.piece_id,
            "amount": to_decimal_text(req.amount_minor, req.currency), "currency": req.currency,
            "maturity_date": req.maturity_date.isoformat(),
            "description": req.description or
            f"应收账款电子凭证 {req.voucher_id} 拆分 {req.piece_id}，到期日 {req.maturity_date.isoformat()}",
        },
        "period_months": req.period_months,
    }
    _refuse_unsafe_text(packet, "")
    return packet


def render_registration_packet(req: RegistrationRequest, *,
                               format: Literal["json", "xml"] = "json") -> bytes:
    """The registration packet as deterministic JSON or XML bytes."""
    packet = registration_packet(req)
    if format == "json":
        return json.dumps(packet, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
    q = "{" + PACKET_NS + "}"
    root = etree.Element(q + "RegistrationPacket", nsmap={None: PACKET_NS})

    def add(parent: etree._Element, key: str, value: Any) -> None:
        tag = "".join(part.capitalize() for part in key.split("_"))
        if isinstance(value, dict):
            el = etree.SubElement(parent, q + tag)
            for k, v in value.items():
                add(el, k, v)
        elif value is not None:
            etree.SubElement(parent, q + tag).text = str(value)

    for key, value in packet.items():
        if key != "schema":
            add(root, key, value)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out


def parse_registry_response(data: bytes, *, source: str) -> RegistryResponse:
    """``{"request_id", "operation", "status", "registration_no", "registered_at", "expires_on",
    "conflicts": [{"registration_no", "registrant", "registered_at", "description"}], "reason"}``."""
    doc = loads_records(data, source=source)  # strict: bad UTF-8, depth, numbers kept as text
    dup = first_duplicate(doc)
    if dup is not None:
        raise FieldError(f"{dup} appears twice in one object", source=source, field=dup,
                         code="duplicate_field")
    if not isinstance(doc, dict):
        raise FieldError("expected a JSON object", source=source, code="invalid_field")
    try:
        op = batch.req_text(doc, "operation", max_len=16).lower()
        if op not in OPERATIONS:
            raise RecordError("invalid_field", f"operation {op!r} not one of {OPERATIONS}", "operation")
        status = batch.req_text(doc, "status", max_len=16).upper()
        if status not in STATUSES:
            raise RecordError("invalid_field", f"status {status!r} not one of {STATUSES}", "status")
        raw_conflicts = doc.get("conflicts") or []
        if not isinstance(raw_conflicts, list):
            raise RecordError("invalid_field", "conflicts must be a list", "conflicts")
        conflicts = []
        for n, c in enumerate(raw_conflicts):
            if not isinstance(c, dict):
                raise RecordError("invalid_field", "conflict must be an object", f"conflicts[{n}]")
            conflicts.append(RegistryConflict(
                registration_no=batch.req_text(c, "registration_no", max_len=64),
                registrant=batch.opt_text(c, "registrant"),
                registered_at=batch.opt_datetime(c, "registered_at"),
                description=batch.opt_text(c, "description", max_len=1000)))
        out = RegistryResponse(
            request_id=batch.req_text(doc, "request_id", max_len=64), operation=op,  # type: ignore[arg-type]
            status=status, registration_no=batch.opt_text(doc, "registration_no", max_len=64),
            registered_at=batch.opt_datetime(doc, "registered_at"),
            expires_on=batch.opt_date(doc, "expires_on"), conflicts=tuple(conflicts),
            reason=batch.opt_text(doc, "reason", max_len=1000))
        if status in ("REGISTERED", "AMENDED") and out.registration_no is None:
            raise RecordError("missing_field", f"status {status} needs registration_no", "registration_no")
        if status == "REJECTED" and out.reason is None:
            raise RecordError("missing_field", "a rejection needs a reason", "reason")
        return out
    except RecordError as e:
        raise FieldError(str(e), source=source, field=e.field, code=e.code) from e
