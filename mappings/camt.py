"""camt.052 / camt.053 / camt.054 (.001.02 to .001.13) -> canonical statements, streaming; and a writer.

``iter_camt_items`` reads the bytes or binary stream it is handed with ``mappings.xml``'s hardened
iterparse (tag-filtered on GrpHdr / Stmt|Ntfctn|Rpt / Ntry, each element cleared once mapped) and
yields the flat item stream of ``mappings.statement_stream``; entries are mapped by one pass over
each Ntry's children (no XPath per entry) - or, for entries of the common shape, by the optional
compiled accelerator ``mappings/_camt_accel.pyx`` (``_ACCEL``; ``_entry`` stays the reference and
maps everything it refuses). A statement's header (balances, TxsSummry) precedes its
entries in every version, so it is read when the first entry (or the statement's end) arrives.
``write_camt053`` / ``render_camt053`` write statements back (sandbox banks, round-trip tests),
streaming through ``lxml.etree.xmlfile``. No I/O beyond the stream handed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from typing import IO, Literal

from lxml import etree

from ledger.canonical import CreditDebit, Party, Statement, StatementEntry, TransactionDetail
from ledger.lexical import ascii_digits, iso_date, iso_datetime
from ledger.money import CURRENCY_EXPONENT as _EXP
from ledger.money import AmountError, to_decimal_text, to_minor
from mappings import accel
from mappings.errors import FieldError, MappingError, UnsupportedFormat, XmlLimitError
from mappings.iso20022 import ISO_NS_PREFIX, xpath_of
from mappings.statement_stream import Head, Item, Summary, Tail, make_entry, make_party
from mappings.xml import STREAM_LIMITS, Element, XmlLimits, iter_elements, open_stream

NS_RE = re.compile(r"\Aurn:iso:std:iso:20022:tech:xsd:(camt\.05[234])\.001\.(0[2-9]|1[0-3])\Z", re.ASCII)
_CONTAINER = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
              "camt.052": ("BkToCstmrAcctRpt", "Rpt")}
#: The compiled per-entry fast path (mappings/_camt_accel.pyx) or None; read at each parse, so
#: tests can set it to None to run the pure-Python reference.
_ACCEL = accel.load("camt")
_OPENING = ("OPBD", "PRCD")
_CLOSING = ("CLBD",)


def camt_kind(namespace: str | None) -> tuple[str, str] | None:
    """("camt.053", "08") for a supported camt namespace, else None."""
    m = NS_RE.match(namespace or "")
    return (m.group(1), m.group(2)) if m else None


class _Ctx:
    """Per-file mapping state: namespace prefix, source name, limits."""

    __slots__ = ("dates", "max_text", "q", "source")

    def __init__(self, ns: str, source: str, limits: XmlLimits) -> None:
        self.q = "{" + ns + "}"
        self.source = source
        self.max_text = limits.max_text
        self.dates: dict[str, date] = {}

    def fail(self, el: Element, field: str, message: str, code: str = "invalid_field") -> FieldError:
        return FieldError(message, source=self.source, line=el.sourceline, xpath=xpath_of(el), field=field,
                          code=code)

    def text(self, el: Element | None) -> str | None:
        if el is None:
            return None
        t = el.text
        if t is None:
            return None
        if len(t) > self.max_text:
            raise XmlLimitError(f"text longer than {self.max_text} characters", source=self.source,
                                line=el.sourceline, xpath=xpath_of(el), code="text_too_long")
        t = t.strip()
        return t or None

    def child_text(self, el: Element | None, path: str) -> str | None:
        if el is None:
            return None
        q = self.q
        return self.text(el.find(q + path.replace("/", "/" + q)))

    def amount(self, el: Element, field: str) -> tuple[int, str]:
        ccy = el.get("Ccy")
        if not ccy:
            raise self.fail(el, field + "/@Ccy", "amount without Ccy attribute", "missing_field")
        try:
            return to_minor(el.text or "", ccy), ccy
        except AmountError as e:
            raise self.fail(el, field, str(e), e.code) from e

    def decimal(self, el: Element | None, currency: str, field: str) -> int | None:
        t = self.text(el)
        if t is None or el is None:
            return None
        try:
            return to_minor(t, currency)
        except AmountError as e:
            raise self.fail(el, field, str(e), e.code) from e

    def date_of(self, el: Element, field: str) -> date | None:
        """A ``DateAndDateTimeChoice``: <Dt> or <DtTm> child (statements repeat few dates: cached)."""
        for child in el:
            t = self.text(child)
            if t is None:
                continue
            day = t[:10]
            cached = self.dates.get(day)
            if cached is not None:
                return cached
            try:
                value = iso_date(day)  # YYYY-MM-DD exactly (fromisoformat alone takes 20260302)
            except ValueError as e:
                raise self.fail(child, field, f"invalid date {t!r}", "invalid_date") from e
            if len(self.dates) < 4096:
                self.dates[day] = value
            return value
        return None

    def int_of(self, el: Element | None, field: str) -> int | None:
        t = self.text(el)
        if t is None or el is None:
            return None
        if not ascii_digits(t):  # str.isdigit() is true for "１２" and "١٢" too
            raise self.fail(el, field, f"not a number: {t!r}")
        return int(t)


def _local(el: Element) -> str:
    tag = el.tag
    return tag[tag.index("}") + 1:] if isinstance(tag, str) else ""


def _bank_tx_code(c: _Ctx, el: Element, domn_tag: str) -> str | None:
    """``Domn/Cd/Fmly/Cd/SubFmlyCd`` as ``PMNT/RCDT/BOOK``, else ``Prtry/Cd``; by position (schema order)."""
    if not len(el):
        return None
    first = el[0]
    is_domn = first.tag == domn_tag
    if is_domn and len(first) == 2:
        fmly = first[1]
        if len(fmly) == 2:
            return f"{c.text(first[0])}/{c.text(fmly[0])}/{c.text(fmly[1])}"
    if is_domn:
        parts = [c.child_text(first, "Cd"), c.child_text(first, "Fmly/Cd"),
                 c.child_text(first, "Fmly/SubFmlyCd")]
        return "/".join(p for p in parts if p) or None
    return c.child_text(el, "Prtry/Cd")


def _account(c: _Ctx, el: Element | None) -> str | None:
    if el is None:
        return None
    return c.child_text(el, "Id/IBAN") or c.child_text(el, "Id/Othr/Id")


def _agent(c: _Ctx, el: Element | None, tags: _Tags | None = None) -> str | None:
    """An agent's BIC, clearing member id (CNAPS) or other id; by position first."""
    if el is None or not len(el):
        return None
    fin = el[0]
    if not len(fin):
        return None
    first = fin[0]
    tag = first.tag
    q = c.q
    if tags is not None:
        if tag in (tags.bicfi, tags.bic):
            return c.text(first)
        if tag == tags.othr and len(first):
            return c.text(first[0])
    elif tag in (q + "BICFI", q + "BIC"):
        return c.text(first)
    return (c.child_text(fin, "BICFI") or c.child_text(fin, "BIC")
            or c.child_text(fin, "ClrSysMmbId/MmbId") or c.child_text(fin, "Othr/Id"))


# --- the per-entry hot path: one pass over children, tags compared as whole strings -----------

(_AMT, _CDI, _RVSL, _STS, _BOOKG, _VAL, _NREF, _ASREF, _BTC, _DTLS, _ADDTL, _TXDTLS, _REFS, _E2E, _INSTR,
 _PMTINF, _PARTIES, _AGENTS, _RMT, _RTR, _DBTR, _DBTR_ACCT, _CDTR, _CDTR_ACCT, _DBTR_AGT, _CDTR_AGT,
 _AMT_DTLS, _OTHER) = range(28)
_NAMES = {
    "Amt": _AMT, "CdtDbtInd": _CDI, "RvslInd": _RVSL, "Sts": _STS, "BookgDt": _BOOKG, "ValDt": _VAL,
    "NtryRef": _NREF, "AcctSvcrRef": _ASREF, "BkTxCd": _BTC, "NtryDtls": _DTLS, "AddtlNtryInf": _ADDTL,
    "TxDtls": _TXDTLS, "Refs": _REFS, "EndToEndId": _E2E, "InstrId": _INSTR, "PmtInfId": _PMTINF,
    "RltdPties": _PARTIES, "RltdAgts": _AGENTS, "RmtInf": _RMT, "RtrInf": _RTR, "Dbtr": _DBTR,
    "DbtrAcct": _DBTR_ACCT, "Cdtr": _CDTR, "CdtrAcct": _CDTR_ACCT, "DbtrAgt": _DBTR_AGT,
    "CdtrAgt": _CDTR_AGT, "AmtDtls": _AMT_DTLS,
}


class _Tags:
    """Clark-notation tag -> small int for one namespace (dict lookup instead of parsing names)."""

    __slots__ = ("bic", "bicfi", "domn", "kinds", "nm", "othr", "pty", "q", "ustrd")

    def __init__(self, q: str) -> None:
        self.q = q
        self.kinds = {q + name: kind for name, kind in _NAMES.items()}
        self.pty, self.nm, self.domn = q + "Pty", q + "Nm", q + "Domn"
        self.bicfi, self.bic, self.othr = q + "BICFI", q + "BIC", q + "Othr"
        self.ustrd = q + "Ustrd"


def _fast_minor(text: str | None, currency: str) -> int | None:
    """Exact minor units for plain ``123.45`` text (the common case); None -> use ``to_minor``."""
    if text is None:
        return None
    whole, _, frac = text.strip().partition(".")
    exp = _EXP.get(currency)
    # a subset of what to_minor accepts (at most 18 integer digits: to_minor bounds them at 24)
    if exp is None or len(frac) > exp or len(whole) > 18 or not whole.isascii() or not whole.isdigit() \
            or (frac and not (frac.isascii() and frac.isdigit())):
        return None
    minor: int = int(whole) * 10**exp + (int(frac) * 10 ** (exp - len(frac)) if frac else 0)
    return minor


_TxTuple = tuple[int | None, str | None, "CreditDebit | None", str | None, str | None, str | None, str | None,
                 str | None, str | None, list[Element | None]]


def _tx_details(c: _Ctx, tags: _Tags, tx: Element) -> _TxTuple:
    """One TxDtls: (amount, ccy, cd, e2e, instr, pmtinf, acct_ref, remit, rtr, parties).

    ``parties`` = [Dbtr, DbtrAcct, Cdtr, CdtrAcct, DbtrAgt, CdtrAgt] elements (read later, for the
    side that is the counterparty only). Text reads are inlined (this runs once per entry).
    """
    amount: int | None = None
    ccy: str | None = None
    cd: CreditDebit | None = None
    e2e = instr = pmtinf = acct_ref = remit = rtr = None
    parties: list[Element | None] = [None, None, None, None, None, None]
    kinds = tags.kinds
    mt = c.max_text
    for child in tx.getchildren():
        kind = kinds.get(child.tag, _OTHER)
        if kind == _REFS:
            for ref in child.getchildren():
                rk = kinds.get(ref.tag, _OTHER)
                if _E2E <= rk <= _PMTINF or rk == _ASREF:
                    t = ref.text
                    if t is not None:
                        if len(t) > mt:
                            c.text(ref)  # raises the limit error
                        t = t.strip() or None
                    if rk == _E2E:
                        e2e = t
                    elif rk == _INSTR:
                        instr = t
                    elif rk == _PMTINF:
                        pmtinf = t
                    else:
                        acct_ref = t
        elif kind in (_PARTIES, _AGENTS):
            for p in child.getchildren():
                pk = kinds.get(p.tag, _OTHER)
                if _DBTR <= pk <= _CDTR_AGT:
                    parties[pk - _DBTR] = p
        elif kind == _RMT:
            parts = []
            ustrd = tags.ustrd
            for u in child.getchildren():
                if u.tag == ustrd:
                    t = u.text
                    if t is not None:
                        if len(t) > mt:
                            c.text(u)
                        t = t.strip()
                        if t:
                            parts.append(t)
            if not parts:
                ref = c.child_text(child, "Strd/CdtrRefInf/Ref")
                if ref:
                    parts.append(ref)
            remit = " ".join(parts) or None
        elif kind == _AMT:
            amount, ccy = c.amount(child, "TxDtls/Amt")
        elif kind == _AMT_DTLS and amount is None:
            q = tags.q
            amt = child.find(q + "TxAmt/" + q + "Amt")
            if amt is not None:
                amount, ccy = c.amount(amt, "TxDtls/AmtDtls/TxAmt/Amt")
        elif kind == _CDI:
            cdt = c.text(child)
            if cdt == "CRDT":
                cd = "CRDT"
            elif cdt == "DBIT":
                cd = "DBIT"
            else:
                raise c.fail(child, "TxDtls/CdtDbtInd", f"CdtDbtInd must be CRDT or DBIT, got {cdt!r}")
        elif kind == _RTR:
            rtr = c.child_text(child, "Rsn/Cd") or c.child_text(child, "Rsn/Prtry")
    return amount, ccy, cd, e2e, instr, pmtinf, acct_ref, remit, rtr, parties


def _party_name(c: _Ctx, tags: _Tags, el: Element | None) -> str | None:
    if el is None or not len(el):
        return None
    first = el[0]
    if first.tag == tags.pty:  # v8+: Dbtr/Pty/Nm
        el = first
        if not len(el):
            return None
        first = el[0]
    return c.text(first) if first.tag == tags.nm else c.child_text(el, "Nm")


def _fast_account(c: _Ctx, el: Element | None) -> str | None:
    """Acct/Id/IBAN or Acct/Id/Othr/Id, by position first (the schema fixes the order)."""
    if el is None or not len(el):
        return None
    ident = el[0]
    if not len(ident):
        return None
    choice = ident[0]
    if len(choice):  # Othr/Id
        return c.text(choice[0])
    return c.text(choice)


def _counterparty(c: _Ctx, tags: _Tags, parties: list[Element | None], direction: CreditDebit) -> Party:
    dbtr, dbtr_acct, cdtr, cdtr_acct, dbtr_agt, cdtr_agt = parties
    if direction == "CRDT":  # money came in: the debtor is the other side
        name, acct, agt = dbtr, dbtr_acct, dbtr_agt
    else:
        name, acct, agt = cdtr, cdtr_acct, cdtr_agt
    if name is None and acct is None and agt is None:
        return _NO_PARTY
    return make_party(_party_name(c, tags, name), _fast_account(c, acct), _agent(c, agt, tags))


_NO_PARTY = Party()


def _entry(c: _Ctx, tags: _Tags, ntry: Element) -> StatementEntry:
    """Map one Ntry by a single pass over its children (tags compared as whole Clark strings).

    The common leaves' text is read inline (same rules as ``_Ctx.text``: over-long text raises,
    whitespace is stripped, empty is None); anything unusual goes through the general helpers.
    """
    amount: int | None = None
    ccy: str | None = None
    cd: str | None = None
    reversal = False
    status = "BOOK"
    booking = value = None
    entry_ref = acct_ref = btc = addtl = None
    txs: list[_TxTuple] = []
    kinds = tags.kinds
    mt = c.max_text
    dates = c.dates
    for child in ntry.getchildren():  # a list built in C: cheaper than the child iterator
        kind = kinds.get(child.tag, _OTHER)
        if kind == _AMT:
            ccy = child.get("Ccy")
            amount = None
            t = child.text
            exp = _EXP.get(ccy) if ccy else None
            if t is not None and exp is not None:  # _fast_minor, inlined: plain "123.45"
                whole, _, frac = t.strip().partition(".")
                if len(frac) <= exp and len(whole) <= 18 and whole.isascii() and whole.isdigit() \
                        and (not frac or (frac.isascii() and frac.isdigit())):
                    amount = int(whole) * 10**exp + (int(frac) * 10 ** (exp - len(frac)) if frac else 0)
            if amount is None:
                amount, ccy = c.amount(child, "Ntry/Amt")
        elif kind in (_CDI, _ASREF, _NREF, _ADDTL, _RVSL):
            t = child.text
            if t is not None:
                if len(t) > mt:
                    c.text(child)  # raises the limit error
                t = t.strip() or None
            if kind == _CDI:
                cd = t
            elif kind == _ASREF:
                acct_ref = t
            elif kind == _NREF:
                entry_ref = t
            elif kind == _ADDTL:
                addtl = t
            else:
                reversal = t in ("true", "1")
        elif kind in (_BOOKG, _VAL):
            day: date | None = None
            for dc in child.getchildren():  # DateAndDateTimeChoice: the first non-empty <Dt>/<DtTm>
                t = dc.text
                if t is None:
                    continue
                if len(t) > mt:
                    c.text(dc)
                t = t.strip()
                if not t:
                    continue
                day = dates.get(t[:10])
                if day is None:
                    day = c.date_of(child, "Ntry/BookgDt" if kind == _BOOKG else "Ntry/ValDt")
                break
            if kind == _BOOKG:
                booking = day
            else:
                value = day
        elif kind == _STS:
            status = c.text(child) or (c.text(child[0]) if len(child) else None) or "BOOK"
        elif kind == _BTC:
            btc = _bank_tx_code(c, child, tags.domn)
        elif kind == _DTLS:
            for tx in child.getchildren():
                if kinds.get(tx.tag) == _TXDTLS:
                    txs.append(_tx_details(c, tags, tx))
    if amount is None or ccy is None:
        raise c.fail(ntry, "Ntry/Amt", "entry without amount", "missing_field")
    direction: CreditDebit
    if cd == "CRDT":
        direction = "CRDT"
    elif cd == "DBIT":
        direction = "DBIT"
    else:
        raise c.fail(ntry, "Ntry/CdtDbtInd", f"CdtDbtInd must be CRDT or DBIT, got {cd!r}",
                     "missing_field" if cd is None else "invalid_field")
    if len(txs) == 1:
        _, _, _, e2e, instr, _, t_acct_ref, remit, rtr, parties = txs[0]
        return make_entry(amount, ccy, direction, booking, value, reversal, status, entry_ref,
                          acct_ref or t_acct_ref, e2e, instr, None, remit or addtl, btc, rtr,
                          _counterparty(c, tags, parties, direction), ntry.sourceline, ())
    details = tuple(
        TransactionDetail(amount_minor=t[0], currency=t[1], credit_debit=t[2], end_to_end_id=t[3],
                          instruction_id=t[4], payment_info_id=t[5], account_servicer_ref=t[6],
                          remittance_info=t[7], return_reason=t[8],
                          counterparty=_counterparty(c, tags, t[9], t[2] or direction))
        for t in txs)
    return make_entry(amount, ccy, direction, booking, value, reversal, status, entry_ref, acct_ref, None,
                      None, None, addtl, btc, None, _NO_PARTY, ntry.sourceline, details)


def _balance(c: _Ctx, bal: Element) -> tuple[str | None, int, str]:
    code = c.child_text(bal, "Tp/CdOrPrtry/Cd") or c.child_text(bal, "Tp/CdOrPrtry/Prtry")
    amt_el = bal.find(c.q + "Amt")
    if amt_el is None:
        raise c.fail(bal, "Bal/Amt", "balance without amount", "missing_field")
    field = f"Bal[{code}]/Amt"
    minor, ccy = c.amount(amt_el, field)
    cd = c.child_text(bal, "CdtDbtInd")
    if cd not in ("CRDT", "DBIT"):
        raise c.fail(bal, f"Bal[{code}]/CdtDbtInd", f"CdtDbtInd must be CRDT or DBIT, got {cd!r}")
    return code, (minor if cd == "CRDT" else -minor), ccy


def _summary(c: _Ctx, el: Element, ccy: str) -> Summary:
    q = c.q

    def count(path: str) -> int | None:
        return c.int_of(el.find(q + path.replace("/", "/" + q)), "TxsSummry/" + path)

    def amount(path: str) -> int | None:
        return c.decimal(el.find(q + path.replace("/", "/" + q)), ccy, "TxsSummry/" + path)

    net: int | None = None
    tot = el.find(q + "TtlNtries")
    if tot is not None:
        net_el = tot.find(q + "TtlNetNtry")
        if net_el is not None:  # v3+: TtlNetNtry/Amt + CdtDbtInd
            net = c.decimal(net_el.find(q + "Amt"), ccy, "TxsSummry/TtlNtries/TtlNetNtry/Amt")
            if net is not None and c.child_text(net_el, "CdtDbtInd") == "DBIT":
                net = -net
        else:  # v2: TtlNetNtryAmt + CdtDbtInd
            net = c.decimal(tot.find(q + "TtlNetNtryAmt"), ccy, "TxsSummry/TtlNtries/TtlNetNtryAmt")
            if net is not None and c.child_text(tot, "CdtDbtInd") == "DBIT":
                net = -net
    return Summary(count=count("TtlNtries/NbOfNtries"), total_minor=amount("TtlNtries/Sum"), net_minor=net,
                   credit_count=count("TtlCdtNtries/NbOfNtries"), credit_minor=amount("TtlCdtNtries/Sum"),
                   debit_count=count("TtlDbtNtries/NbOfNtries"), debit_minor=amount("TtlDbtNtries/Sum"))


def _head(c: _Ctx, stmt: Element, fmt: str, msg_id: str | None, first_entry: Element | None) -> Head:
    """Read a statement's header from its children before ``first_entry`` (or all of them)."""
    q = c.q
    sid = seq = lseq = created = frm = to = acct = ccy = svcr = page = None
    balances: list[tuple[str | None, int, str, Element]] = []
    summary_el: Element | None = None
    for child in stmt:
        if child is first_entry:
            break
        name = _local(child)
        if name == "Id":
            sid = c.text(child)
        elif name == "ElctrncSeqNb":
            seq = c.int_of(child, "ElctrncSeqNb")
        elif name == "LglSeqNb":
            lseq = c.int_of(child, "LglSeqNb")
        elif name == "CreDtTm":
            t = c.text(child)
            if t:
                try:
                    created = iso_datetime(t)
                except ValueError as e:
                    raise c.fail(child, "CreDtTm", f"invalid date-time {t!r}", "invalid_datetime") from e
        elif name == "FrToDt":
            frm_t, to_t = c.child_text(child, "FrDtTm"), c.child_text(child, "ToDtTm")
            try:
                frm = iso_date(frm_t[:10]) if frm_t else None
                to = iso_date(to_t[:10]) if to_t else None
            except ValueError as e:
                raise c.fail(child, "FrToDt", "invalid from/to date", "invalid_date") from e
        elif name in ("StmtPgntn", "NtfctnPgntn", "RptPgntn"):
            page = c.int_of(child.find(q + "PgNb"), "PgNb")
        elif name == "Acct":
            acct = _account(c, child)
            ccy = c.child_text(child, "Ccy")
            svcr = _agent(c, child.find(q + "Svcr"))
        elif name == "Bal":
            code, minor, bccy = _balance(c, child)
            balances.append((code, minor, bccy, child))
        elif name == "TxsSummry":
            summary_el = child
    if sid is None:
        raise c.fail(stmt, "Id", "statement without Id", "missing_field")
    if acct is None:
        raise c.fail(stmt, "Acct/Id", "statement without account id", "missing_field")
    opening = closing = None
    deferred: FieldError | None = None
    for code, minor, bccy, el in balances:
        if code in _OPENING or code in _CLOSING:
            if ccy is None:
                ccy = bccy
            elif bccy != ccy:
                deferred = deferred or c.fail(
                    el, f"Bal[{code}]/Amt/@Ccy",
                    f"balance currency {bccy} differs from statement currency {ccy}", "currency_mismatch")
                continue
            if code in _OPENING and opening is None:
                opening = minor
            elif code in _CLOSING:
                closing = minor
    if ccy is None and first_entry is not None:
        amt = first_entry.find(q + "Amt")
        ccy = amt.get("Ccy") if amt is not None else None
    if ccy is None:
        raise c.fail(stmt, "Acct/Ccy", "statement currency unknown (no Acct/Ccy, balance or entry)",
                     "missing_field")
    declared = _summary(c, summary_el, ccy) if summary_el is not None else None
    stmt_fmt = fmt
    st = Statement(source_format=stmt_fmt, statement_id=sid, account=acct, currency=ccy, sequence=seq,
                   created_at=created, from_date=frm, to_date=to, opening_balance_minor=opening,
                   closing_balance_minor=closing, entries=(), legal_sequence=lseq, account_servicer=svcr,
                   message_id=msg_id, page=page)
    return Head(st, stmt.sourceline, declared, requires_balances=stmt_fmt.startswith("camt.053"),
                deferred=deferred)


def iter_camt_items(stream: IO[bytes] | bytes, *, source: str,
                    limits: XmlLimits = STREAM_LIMITS) -> Iterator[Item]:
    """The flat item stream (Head, entries, Tail per statement) of a camt.052/053/054 document."""
    prolog, reader = open_stream(stream, source=source, limits=limits)
    kind = camt_kind(prolog.namespace)
    if kind is None or prolog.root_local != "Document":
        raise UnsupportedFormat(
            f"not a supported camt document (root {prolog.root_local!r}, namespace {prolog.namespace!r}); "
            "accepted: camt.052/053/054 .001.02-.001.13", source=source, line=1, code="wrong_namespace")
    msg, version = kind
    fmt = f"{msg}.001.{version}"
    ns = prolog.namespace or ""
    c = _Ctx(ns, source, limits)
    q = c.q
    tags = _Tags(q)
    body_name, container_name = _CONTAINER[msg]
    grp_tag, container_tag, ntry_tag = q + "GrpHdr", q + container_name, q + "Ntry"
    msg_id: str | None = None
    current: Element | None = None
    found = False
    # The accelerator maps entries of the common shape and returns None for the rest, which
    # _entry (the reference) maps; it shares the per-file date cache.
    fast: Callable[[Element], StatementEntry | None] | None = (
        _ACCEL.EntryMapper(ns, c.max_text, c.dates, _NO_PARTY).entry if _ACCEL is not None else None)
    for el in iter_elements(reader, (grp_tag, container_tag, ntry_tag), source=source):
        tag = el.tag
        if tag == ntry_tag:
            parent = el.getparent()
            if parent is None or parent.tag != container_tag:
                raise c.fail(el, "Ntry", "entry outside a statement", "malformed_statement")
            if parent is not current:
                current = parent
                yield _head(c, parent, fmt, msg_id, el)
            if fast is not None:
                e = fast(el)
                yield e if e is not None else _entry(c, tags, el)
            else:
                yield _entry(c, tags, el)
        elif tag == container_tag:
            parent = el.getparent()
            if parent is None or _local(parent) != body_name:
                raise c.fail(el, container_name, f"{container_name} outside {body_name}",
                             "malformed_statement")
            if el is not current:
                yield _head(c, el, fmt, msg_id, None)
            found = True
            current = None
            yield Tail(line=el.sourceline)
        else:
            msg_id = c.child_text(el, "MsgId")
    if not found:
        raise MappingError(f"no {container_name} in the {fmt} document", source=source,
                           field=container_name, code="no_statement")


# --- writing -----------------------------------------------------------------------------------

def _bal(xf: etree._IncrementalFileWriter, code: str, minor: int, ccy: str, day: date | None) -> None:
    with xf.element("Bal"):
        with xf.element("Tp"), xf.element("CdOrPrtry"), xf.element("Cd"):
            xf.write(code)
        _leaf(xf, "Amt", to_decimal_text(abs(minor), ccy), Ccy=ccy)
        _leaf(xf, "CdtDbtInd", "CRDT" if minor >= 0 else "DBIT")
        if day is not None:
            with xf.element("Dt"):
                _leaf(xf, "Dt", day.isoformat())


def _leaf(xf: etree._IncrementalFileWriter, tag: str, text: str, **attrib: str) -> None:
    with xf.element(tag, attrib):
        xf.write(text)


def _write_entry(xf: etree._IncrementalFileWriter, e: StatementEntry, v8: bool) -> None:
    with xf.element("Ntry"):
        if e.entry_ref:
            _leaf(xf, "NtryRef", e.entry_ref)
        _leaf(xf, "Amt", to_decimal_text(e.amount_minor, e.currency), Ccy=e.currency)
        _leaf(xf, "CdtDbtInd", e.credit_debit)
        if e.reversal:
            _leaf(xf, "RvslInd", "true")
        if v8:
            with xf.element("Sts"):
                _leaf(xf, "Cd", e.status)
        else:
            _leaf(xf, "Sts", e.status)
        if e.booking_date:
            with xf.element("BookgDt"):
                _leaf(xf, "Dt", e.booking_date.isoformat())
        if e.value_date:
            with xf.element("ValDt"):
                _leaf(xf, "Dt", e.value_date.isoformat())
        if e.account_servicer_ref:
            _leaf(xf, "AcctSvcrRef", e.account_servicer_ref)
        with xf.element("BkTxCd"):
            code = e.bank_tx_code or ""
            parts = code.split("/")
            if len(parts) == 3 and all(len(p) == 4 for p in parts):
                with xf.element("Domn"):
                    _leaf(xf, "Cd", parts[0])
                    with xf.element("Fmly"):
                        _leaf(xf, "Cd", parts[1])
                        _leaf(xf, "SubFmlyCd", parts[2])
            else:
                with xf.element("Prtry"):
                    _leaf(xf, "Cd", code or "NTRF")
        cp = e.counterparty
        has_tx = any((e.end_to_end_id, e.instruction_id, e.remittance_info, e.return_reason,
                      cp.name, cp.account, cp.agent))
        if not has_tx:
            return
        with xf.element("NtryDtls"), xf.element("TxDtls"):
            if e.end_to_end_id or e.instruction_id:
                with xf.element("Refs"):
                    if e.instruction_id:
                        _leaf(xf, "InstrId", e.instruction_id)
                    _leaf(xf, "EndToEndId", e.end_to_end_id or "NOTPROVIDED")
            if cp.name or cp.account:
                role = "Dbtr" if e.credit_debit == "CRDT" else "Cdtr"
                with xf.element("RltdPties"):
                    if cp.name:
                        with xf.element(role):
                            if v8:
                                with xf.element("Pty"):
                                    _leaf(xf, "Nm", cp.name)
                            else:
                                _leaf(xf, "Nm", cp.name)
                    if cp.account:
                        with xf.element(role + "Acct"), xf.element("Id"), xf.element("Othr"):
                            _leaf(xf, "Id", cp.account)
            if cp.agent:
                role = "DbtrAgt" if e.credit_debit == "CRDT" else "CdtrAgt"
                with xf.element("RltdAgts"), xf.element(role), xf.element("FinInstnId"), \
                        xf.element("Othr"):
                    _leaf(xf, "Id", cp.agent)
            if e.remittance_info:
                with xf.element("RmtInf"):
                    _leaf(xf, "Ustrd", e.remittance_info)
            if e.return_reason:
                with xf.element("RtrInf"), xf.element("Rsn"):
                    _leaf(xf, "Cd", e.return_reason)


def write_camt053(
    out: IO[bytes],
    statements: Iterable[Statement],
    *,
    version: Literal["02", "08"] = "08",
    message_id: str,
    created_at: datetime,
    entries: Iterable[StatementEntry] | None = None,
) -> None:
    """Stream a camt.053 document to ``out`` (constant memory).

    Each statement's own ``entries`` are written, with a TxsSummry computed from them; when
    ``entries`` is given (one statement only, e.g. a generated 1 GB file) those are streamed
    instead and no TxsSummry is written (it would have to precede them).
    """
    ns = f"{ISO_NS_PREFIX}camt.053.001.{version}"
    v8 = version != "02"
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element("Document", nsmap={None: ns}), xf.element("BkToCstmrStmt"):
            with xf.element("GrpHdr"):
                _leaf(xf, "MsgId", message_id)
                _leaf(xf, "CreDtTm", created_at.isoformat(timespec="seconds"))
            for st in statements:
                _write_statement(xf, st, v8, entries)
                xf.flush()


def _write_statement(xf: etree._IncrementalFileWriter, st: Statement, v8: bool,
                     entries: Iterable[StatementEntry] | None) -> None:
    ccy = st.currency
    with xf.element("Stmt"):
        _leaf(xf, "Id", st.statement_id)
        if st.page is not None:
            with xf.element("StmtPgntn"):
                _leaf(xf, "PgNb", str(st.page))
                _leaf(xf, "LastPgInd", "true")
        if st.sequence is not None:
            _leaf(xf, "ElctrncSeqNb", str(st.sequence))
        if st.legal_sequence is not None:
            _leaf(xf, "LglSeqNb", str(st.legal_sequence))
        if st.created_at is not None:
            _leaf(xf, "CreDtTm", st.created_at.isoformat(timespec="seconds"))
        if st.from_date and st.to_date:
            with xf.element("FrToDt"):
                _leaf(xf, "FrDtTm", f"{st.from_date.isoformat()}T00:00:00")
                _leaf(xf, "ToDtTm", f"{st.to_date.isoformat()}T23:59:59")
        with xf.element("Acct"):
            with xf.element("Id"):
                if re.match(r"\A[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}\Z", st.account):
                    _leaf(xf, "IBAN", st.account)
                else:
                    with xf.element("Othr"):
                        _leaf(xf, "Id", st.account)
            _leaf(xf, "Ccy", ccy)
            if st.account_servicer:
                with xf.element("Svcr"), xf.element("FinInstnId"):
                    if re.match(r"\A[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?\Z", st.account_servicer):
                        _leaf(xf, "BICFI" if v8 else "BIC", st.account_servicer)
                    else:
                        with xf.element("Othr"):
                            _leaf(xf, "Id", st.account_servicer)
        if st.opening_balance_minor is not None:
            _bal(xf, "OPBD", st.opening_balance_minor, ccy, st.from_date)
        if st.closing_balance_minor is not None:
            _bal(xf, "CLBD", st.closing_balance_minor, ccy, st.to_date)
        if entries is None:
            _write_summary(xf, st, v8)
        for e in (st.entries if entries is None else entries):
            _write_entry(xf, e, v8)


def _write_summary(xf: etree._IncrementalFileWriter, st: Statement, v8: bool) -> None:
    ccy = st.currency
    credits = [e.amount_minor for e in st.entries if e.credit_debit == "CRDT"]
    debits = [e.amount_minor for e in st.entries if e.credit_debit == "DBIT"]
    net = sum(credits) - sum(debits)

    def num(minor: int) -> str:
        return to_decimal_text(minor, ccy)

    with xf.element("TxsSummry"):
        with xf.element("TtlNtries"):
            _leaf(xf, "NbOfNtries", str(len(credits) + len(debits)))
            _leaf(xf, "Sum", num(sum(credits) + sum(debits)))
            if v8:
                with xf.element("TtlNetNtry"):
                    _leaf(xf, "Amt", num(abs(net)))
                    _leaf(xf, "CdtDbtInd", "CRDT" if net >= 0 else "DBIT")
            else:
                _leaf(xf, "TtlNetNtryAmt", num(abs(net)))
                _leaf(xf, "CdtDbtInd", "CRDT" if net >= 0 else "DBIT")
        for tag, items in (("TtlCdtNtries", credits), ("TtlDbtNtries", debits)):
            with xf.element(tag):
                _leaf(xf, "NbOfNtries", str(len(items)))
                _leaf(xf, "Sum", num(sum(items)))


def render_camt053(statements: Statement | Iterable[Statement], *, version: Literal["02", "08"] = "08",
                   message_id: str | None = None, created_at: datetime | None = None) -> bytes:
    """A camt.053 document for one or more (small) statements, as bytes."""
    import io

    items = [statements] if isinstance(statements, Statement) else list(statements)
    if not items:
        raise MappingError("no statements to render", code="render_error")
    first = items[0]
    buf = io.BytesIO()
    write_camt053(buf, items, version=version,
                  message_id=message_id or first.message_id or f"CAMT053-{first.statement_id}"[:35],
                  created_at=created_at or first.created_at or datetime(1970, 1, 1, tzinfo=UTC),
                  )
    return buf.getvalue()


