"""ISO 20022 building blocks shared by the pain and camt mappings: parties, accounts, agents, amounts.

Small pure functions that write or read one ISO 20022 component on an lxml element in a given
namespace. Knows nothing about which message it is part of; never parses bytes (see
``mappings.xml``) and never does I/O.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from lxml import etree

from ledger import lexical
from ledger.canonical import Party
from ledger.money import AmountError, to_decimal_text, to_minor
from mappings.errors import FieldError, RenderError
from mappings.xml import Element

IBAN_RE = re.compile(r"\A[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}\Z", re.ASCII)
BIC_RE = re.compile(r"\A[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?\Z", re.ASCII)
CNAPS_RE = re.compile(r"\A[0-9]{12}\Z", re.ASCII)
USCC_SCHEME = "USCC"
ISO_NS_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"


class Writer:
    """Creates elements in one namespace: ``w.sub(parent, "MsgId", "X")``."""

    def __init__(self, namespace: str) -> None:
        self.ns = namespace
        self._q = "{" + namespace + "}"

    def root(self, tag: str) -> Element:
        return etree.Element(self._q + tag, nsmap={None: self.ns})

    def sub(self, parent: Element, tag: str, text: str | None = None, **attrib: str) -> Element:
        el = etree.SubElement(parent, self._q + tag, attrib)
        if text is not None:
            el.text = text
        return el

    def amount(self, parent: Element, tag: str, minor: int, currency: str) -> Element:
        return self.sub(parent, tag, to_decimal_text(minor, currency), Ccy=currency)

    def account(self, parent: Element, tag: str, account: str, *, field: str) -> None:
        acct = self.sub(self.sub(parent, tag), "Id")
        if IBAN_RE.match(account):
            self.sub(acct, "IBAN", account)
        elif 0 < len(account) <= 34:
            self.sub(self.sub(acct, "Othr"), "Id", account)
        else:
            raise RenderError(f"account {account!r} is neither an IBAN nor 1-34 characters", field=field)

    def agent(self, parent: Element, tag: str, agent: str | None, *, bic_tag: str, field: str) -> None:
        fin = self.sub(self.sub(parent, tag), "FinInstnId")
        if agent is None:
            self.sub(self.sub(fin, "Othr"), "Id", "NOTPROVIDED")
        elif BIC_RE.match(agent):
            self.sub(fin, bic_tag, agent)
        elif CNAPS_RE.match(agent):
            mmb = self.sub(fin, "ClrSysMmbId")
            self.sub(self.sub(mmb, "ClrSysId"), "Cd", "CNAPS")
            self.sub(mmb, "MmbId", agent)
        else:
            raise RenderError(f"agent {agent!r} is neither a BIC nor a 12-digit CNAPS code", field=field)

    def party(self, parent: Element, tag: str, party: Party, *, wrap_pty: bool = False) -> None:
        el = self.sub(parent, tag)
        if wrap_pty:
            el = self.sub(el, "Pty")
        if party.name is not None:
            self.sub(el, "Nm", party.name)
        if party.uscc is not None:
            othr = self.sub(self.sub(self.sub(el, "Id"), "OrgId"), "Othr")
            self.sub(othr, "Id", party.uscc)
            self.sub(self.sub(othr, "SchmeNm"), "Prtry", USCC_SCHEME)


class Reader:
    """Reads components of small (already size-checked) documents in one namespace."""

    def __init__(self, namespace: str, source: str) -> None:
        self.ns = namespace
        self.nsmap = {"p": namespace}
        self.source = source

    def path(self, path: str) -> str:
        return "/".join("p:" + step for step in path.split("/"))

    def find(self, el: Element, path: str) -> Element | None:
        found: Element | None = el.find(self.path(path), self.nsmap)
        return found

    def findall(self, el: Element, path: str) -> list[Element]:
        return list(el.findall(self.path(path), self.nsmap))

    def text(self, el: Element, path: str) -> str | None:
        found = self.find(el, path)
        if found is None or found.text is None:
            return None
        value = found.text.strip()
        return value or None

    def required(self, el: Element, path: str) -> str:
        value = self.text(el, path)
        if value is None:
            raise FieldError(f"missing {path}", source=self.source, line=el.sourceline,
                             xpath=xpath_of(el) + "/" + path, field=path.rsplit("/", 1)[-1],
                             code="missing_field")
        return value

    def amount(self, el: Element, path: str, *, allow_negative: bool = False) -> tuple[int, str] | None:
        found = self.find(el, path)
        if found is None:
            return None
        return amount_of(found, self.source, allow_negative=allow_negative)

    def date(self, el: Element, path: str) -> date | None:
        value = self.text(el, path)
        if value is None:
            return None
        return parse_date(value, source=self.source, line=el.sourceline, field=path)

    def datetime(self, el: Element, path: str) -> datetime | None:
        value = self.text(el, path)
        if value is None:
            return None
        return parse_datetime(value, source=self.source, line=el.sourceline, field=path)

    def account(self, el: Element, path: str) -> str | None:
        acct = self.find(el, path)
        if acct is None:
            return None
        return self.text(acct, "Id/IBAN") or self.text(acct, "Id/Othr/Id")

    def agent(self, el: Element, path: str) -> str | None:
        fin = self.find(el, path + "/FinInstnId")
        if fin is None:
            return None
        agent = (self.text(fin, "BICFI") or self.text(fin, "BIC") or self.text(fin, "ClrSysMmbId/MmbId")
                 or self.text(fin, "Othr/Id"))
        return None if agent == "NOTPROVIDED" else agent

    def party(self, el: Element, path: str) -> tuple[str | None, str | None]:
        """(name, uscc) of a party element, with or without the v8+ ``Pty`` wrapper."""
        pty = self.find(el, path)
        if pty is None:
            return None, None
        inner = self.find(pty, "Pty")
        if inner is not None:
            pty = inner
        uscc = None
        for othr in self.findall(pty, "Id/OrgId/Othr"):
            if self.text(othr, "SchmeNm/Prtry") == USCC_SCHEME:
                uscc = self.text(othr, "Id")
        return self.text(pty, "Nm"), uscc


def xpath_of(el: Element) -> str:
    """A readable XPath (local names, 1-based positions) for error messages."""
    steps: list[str] = []
    node: Element | None = el
    while node is not None:
        tag = node.tag
        if not isinstance(tag, str):
            break
        name = tag.rpartition("}")[2]
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


def amount_of(el: Element, source: str, *, allow_negative: bool = False) -> tuple[int, str]:
    """(minor units, currency) of an ``<Amt Ccy="...">`` style element; over-precision rejected."""
    currency = el.get("Ccy")
    field = el.tag.rpartition("}")[2] if isinstance(el.tag, str) else "Amt"
    if not currency:
        raise FieldError("amount without Ccy attribute", source=source, line=el.sourceline,
                         xpath=xpath_of(el), field=field + "/@Ccy", code="missing_field")
    try:
        return to_minor(el.text or "", currency, allow_negative=allow_negative), currency
    except AmountError as e:
        raise FieldError(str(e), source=source, line=el.sourceline, xpath=xpath_of(el), field=field,
                         code=e.code) from e


def parse_date(value: str, *, source: str, line: int | None, field: str) -> date:
    try:
        return lexical.iso_date(value[:10])  # an ISODate, or the date part of an ISODateTime
    except ValueError as e:
        raise FieldError(f"invalid date {value!r}", source=source, line=line, field=field,
                         code="invalid_date") from e


def parse_datetime(value: str, *, source: str, line: int | None, field: str) -> datetime:
    try:
        return lexical.iso_datetime(value)
    except ValueError as e:
        raise FieldError(f"invalid date-time {value!r}", source=source, line=line, field=field,
                         code="invalid_datetime") from e


def iso_datetime(value: datetime) -> str:
    """ISO 20022 ISODateTime text; naive datetimes are refused (times are timezone-aware)."""
    if value.tzinfo is None:
        raise RenderError("date-time must be timezone-aware", field="CreDtTm")
    return value.isoformat(timespec="seconds")
