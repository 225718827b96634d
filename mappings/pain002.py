"""pain.002 payment status reports: parse (group, payment and transaction level) and render.

``parse_pain002`` accepts pain.002.001.03 up to .001.14 (the status paths are the same in all of
them) and returns one ``PaymentStatus`` per status it carries: the group status (GrpSts) if
present, each payment-information status (PmtInfSts) and each transaction status (TxSts, with
the payment-information id it belongs to). Reason: the first ``StsRsnInf/Rsn`` code (Cd or Prtry);
reason_info: every ``AddtlInf`` joined. ``render_pain002`` writes the same shape so the sandbox
banks and the treasury answer with real files. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from lxml import etree

from ledger.canonical import PaymentStatus
from mappings.errors import FieldError, RenderError, UnsupportedFormat
from mappings.iso20022 import ISO_NS_PREFIX, Reader, Writer, iso_datetime
from mappings.xml import DEFAULT_LIMITS, Element, XmlLimits, parse_document

_NS_RE = re.compile(r"\Aurn:iso:std:iso:20022:tech:xsd:pain\.002\.001\.(0[3-9]|1[0-4])\Z", re.ASCII)
KNOWN_STATUSES = frozenset({
    "ACCP", "ACSC", "ACSP", "ACTC", "ACWC", "ACWP", "ACCC", "ACFC", "ACIS", "PART", "PDNG", "RCVD",
    "RJCT", "CANC", "BLCK", "PATC", "PRES", "STLD",
})


def _reason(r: Reader, el: Element) -> tuple[str | None, str | None]:
    code: str | None = None
    infos: list[str] = []
    for rsn in r.findall(el, "StsRsnInf"):
        if code is None:
            code = r.text(rsn, "Rsn/Cd") or r.text(rsn, "Rsn/Prtry")
        infos.extend(t.text.strip() for t in r.findall(rsn, "AddtlInf") if t.text and t.text.strip())
    return code, (" ".join(infos) or None)


def _status(r: Reader, el: Element, path: str) -> str | None:
    value = r.text(el, path)
    if value is not None and value not in KNOWN_STATUSES:
        raise FieldError(f"unknown status code {value!r}", source=r.source, line=el.sourceline,
                         field=path, code="unknown_status")
    return value


def parse_pain002(data: bytes, *, source: str, limits: XmlLimits = DEFAULT_LIMITS) -> list[PaymentStatus]:
    """All statuses of a pain.002 report, group level first, in document order."""
    prolog, root = parse_document(data, source=source, limits=limits)
    ns = prolog.namespace or ""
    if not _NS_RE.match(ns):
        raise UnsupportedFormat(f"not a pain.002.001.03-.14 document (namespace {ns!r})", source=source,
                                line=1, code="wrong_namespace")
    r = Reader(ns, source)
    body = r.find(root, "CstmrPmtStsRpt")
    if body is None:
        raise FieldError("missing CstmrPmtStsRpt", source=source, line=1, field="CstmrPmtStsRpt",
                         code="missing_field")
    grp = r.find(body, "OrgnlGrpInfAndSts")
    if grp is None:
        raise FieldError("missing OrgnlGrpInfAndSts", source=source, line=1, field="OrgnlGrpInfAndSts",
                         code="missing_field")
    orig_msg = r.required(grp, "OrgnlMsgId")
    out: list[PaymentStatus] = []
    grp_status = _status(r, grp, "GrpSts")
    if grp_status is not None:
        code, info = _reason(r, grp)
        out.append(PaymentStatus("group", orig_msg, grp_status, reason_code=code, reason_info=info))
    for pmt in r.findall(body, "OrgnlPmtInfAndSts"):
        pmt_id = r.required(pmt, "OrgnlPmtInfId")
        pmt_status = _status(r, pmt, "PmtInfSts")
        if pmt_status is not None:
            code, info = _reason(r, pmt)
            out.append(PaymentStatus("payment", orig_msg, pmt_status, original_payment_info_id=pmt_id,
                                     reason_code=code, reason_info=info))
        for tx in r.findall(pmt, "TxInfAndSts"):
            tx_status = _status(r, tx, "TxSts")
            if tx_status is None:
                if pmt_status is None and grp_status is None:
                    raise FieldError("transaction without TxSts and no enclosing status", source=source,
                                     line=tx.sourceline, field="TxSts", code="missing_field")
                continue  # a reference-only entry: the enclosing status applies
            code, info = _reason(r, tx)
            amount = r.amount(tx, "OrgnlTxRef/Amt/InstdAmt")
            out.append(PaymentStatus(
                "transaction", orig_msg, tx_status, original_payment_info_id=pmt_id,
                original_instruction_id=r.text(tx, "OrgnlInstrId"),
                original_end_to_end_id=r.text(tx, "OrgnlEndToEndId"),
                reason_code=code, reason_info=info,
                amount_minor=amount[0] if amount else None, currency=amount[1] if amount else None,
            ))
    if not out:
        raise FieldError("report carries no status at any level", source=source, line=grp.sourceline,
                         field="GrpSts", code="missing_field")
    return out


def render_pain002(
    statuses: Sequence[PaymentStatus],
    *,
    message_id: str,
    created_at: datetime,
    original_message_name: str = "pain.001.001.03",
    version: Literal["03", "10"] = "03",
) -> bytes:
    """A pain.002 for statuses of ONE original message (what a bank or the treasury sends back)."""
    if not statuses:
        raise RenderError("no statuses to render", field="statuses")
    originals = {s.original_message_id for s in statuses}
    if len(originals) != 1:
        raise RenderError(f"statuses refer to several original messages {sorted(originals)}",
                          field="original_message_id")
    groups = [s for s in statuses if s.level == "group"]
    if len(groups) > 1:
        raise RenderError("more than one group-level status", field="level")
    w = Writer(f"{ISO_NS_PREFIX}pain.002.001.{version}")
    doc = w.root("Document")
    body = w.sub(doc, "CstmrPmtStsRpt")
    hdr = w.sub(body, "GrpHdr")
    w.sub(hdr, "MsgId", message_id)
    w.sub(hdr, "CreDtTm", iso_datetime(created_at))
    grp = w.sub(body, "OrgnlGrpInfAndSts")
    w.sub(grp, "OrgnlMsgId", originals.pop())
    w.sub(grp, "OrgnlMsgNmId", original_message_name)
    if groups:
        w.sub(grp, "GrpSts", groups[0].status)
        _render_reason(w, grp, groups[0])
    by_pmt: dict[str, list[PaymentStatus]] = {}
    for s in statuses:
        if s.level == "group":
            continue
        if s.original_payment_info_id is None:
            raise RenderError(f"{s.level}-level status without original_payment_info_id",
                              field="original_payment_info_id")
        by_pmt.setdefault(s.original_payment_info_id, []).append(s)
    for pmt_id, items in by_pmt.items():
        pmt = w.sub(body, "OrgnlPmtInfAndSts")
        w.sub(pmt, "OrgnlPmtInfId", pmt_id)
        for s in (s for s in items if s.level == "payment"):
            w.sub(pmt, "PmtInfSts", s.status)
            _render_reason(w, pmt, s)
        for s in (s for s in items if s.level == "transaction"):
            tx = w.sub(pmt, "TxInfAndSts")
            if s.original_instruction_id:
                w.sub(tx, "OrgnlInstrId", s.original_instruction_id)
            if s.original_end_to_end_id:
                w.sub(tx, "OrgnlEndToEndId", s.original_end_to_end_id)
            w.sub(tx, "TxSts", s.status)
            _render_reason(w, tx, s)
            if s.amount_minor is not None and s.currency is not None:
                w.amount(w.sub(w.sub(tx, "OrgnlTxRef"), "Amt"), "InstdAmt", s.amount_minor, s.currency)
    out: bytes = etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out


def _render_reason(w: Writer, parent: Element, s: PaymentStatus) -> None:
    if s.reason_code is None and s.reason_info is None:
        return
    rsn_inf = w.sub(parent, "StsRsnInf")
    if s.reason_code is not None:
        w.sub(w.sub(rsn_inf, "Rsn"), "Cd" if len(s.reason_code) <= 4 else "Prtry", s.reason_code)
    if s.reason_info is not None:
        w.sub(rsn_inf, "AddtlInf", s.reason_info[:105])
