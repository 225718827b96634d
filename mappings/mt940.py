"""SWIFT MT940 statements and MT942 interim reports -> canonical statements, streaming; and a writer.

``iter_mt940_items`` reads the text line by line (constant memory; the caller hands it bytes or a
binary stream) and yields the flat item stream of ``mappings.statement_stream``. It tolerates the
envelopes banks wrap around the fields (``{1:...}{4:`` blocks, ``-`` / ``-}`` terminators, bank
preamble lines before the first ``:20:``), ``:28:`` and ``:28C:``, ``:60F/M:``, ``:62F/M:``, repeated
or multi-line ``:86:``, and MT942's ``:90D:/:90C:`` totals (checked like camt TxsSummry).
Bank variants are ``Mt940Dialect`` values (see ``mappings.profiles``). ``render_mt940`` writes
statements back (sandboxes, round-trip property tests). No I/O beyond the stream handed in.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO, Literal

from ledger.canonical import CreditDebit, Party, Statement, StatementEntry
from ledger.money import CURRENCY_EXPONENT, AmountError, to_decimal_text, to_minor
from mappings.errors import FieldError, MappingError
from mappings.statement_stream import Head, Item, Summary, Tail

_TAG_RE = re.compile(r"^:(\d\d[A-Z]?):")
_BAL_RE = re.compile(r"^(?P<cd>[CD])(?P<date>\d{6})(?P<ccy>[A-Z]{3})(?P<amount>\d[\d,]*)$")
_LINE_RE = re.compile(
    r"^(?P<vdate>\d{6})(?P<edate>\d{4})?(?P<mark>RC|RD|C|D)(?P<funds>[A-Z])?(?P<amount>\d[\d,]{0,15})"
    r"(?P<ttype>[NFS][A-Z0-9]{3})(?P<rest>[^\n]*)(?:\n(?P<extra>.*))?$", re.DOTALL)
_TOTAL_RE = re.compile(r"^(?P<n>\d{1,5})(?P<ccy>[A-Z]{3})(?P<amount>\d[\d,]*)$")
_28_RE = re.compile(r"^(?P<seq>\d{1,5})(?:/(?P<page>\d{1,5}))?$")
_SLASH_CODES = {"EREF": "end_to_end_id", "REMI": "remittance_info", "NAME": "name", "IBAN": "account",
                "BIC": "agent", "RTRN": "return_reason", "ORDP": "ordp", "BENM": "benm", "CNTP": "cntp"}
_SLASH_RE = re.compile(r"/(EREF|REMI|NAME|IBAN|BIC|RTRN|ORDP|BENM|CNTP|MARF|CSID|PREF|IREF|ULTC|ULTD|PURP|"
                       r"SVCL|TRCD|ISDT|FX|CHGS)/")


@dataclass(frozen=True, slots=True)
class Mt940Dialect:
    """How one bank fills the free parts of MT940. The default is plain SWIFT."""

    name: str = "mt940"
    encoding: str = "utf-8"
    info_style: Literal["free", "slash_codes"] = "free"   # :86: as text, or /EREF/../REMI/.. pairs
    ref_is_counterparty: bool = False     # Rabobank: :61: ref = counterparty account, the rest = name
    strip_account_currency: bool = False  # Rabobank: :25: "1291.99.348EUR" -> "1291.99.348"


DEFAULT_DIALECT = Mt940Dialect()


_DATE_CACHE: dict[str, date] = {}


def _yymmdd(text: str, source: str, line: int, field: str) -> date:
    cached = _DATE_CACHE.get(text)
    if cached is not None:
        return cached
    try:
        yy, mm, dd = int(text[0:2]), int(text[2:4]), int(text[4:6])
        value = date(2000 + yy if yy < 80 else 1900 + yy, mm, dd)
        if len(_DATE_CACHE) < 4096:  # statements repeat a few dates many times
            _DATE_CACHE[text] = value
        return value
    except ValueError as e:
        raise FieldError(f"invalid date {text!r}", source=source, line=line, field=field,
                         code="invalid_date") from e


def _amount(text: str, ccy: str, source: str, line: int, field: str) -> int:
    whole, _, frac = text.partition(",")
    exp = CURRENCY_EXPONENT.get(ccy)
    if exp is not None and len(frac) <= exp and whole.isdigit() and whole.isascii() \
            and (not frac or (frac.isdigit() and frac.isascii())):  # the common case, exactly
        minor: int = int(whole) * 10**exp + (int(frac) * 10 ** (exp - len(frac)) if frac else 0)
        return minor
    try:
        return to_minor(text.replace(",", ".", 1), ccy)
    except AmountError as e:
        raise FieldError(f"{e} (amount {text!r})", source=source, line=line, field=field, code=e.code) from e


class _Pending:
    __slots__ = ("extra", "info", "line", "match")

    def __init__(self, match: re.Match[str], line: int) -> None:
        self.match = match
        self.line = line
        self.info: list[str] = []


class _Parser:
    def __init__(self, source: str, dialect: Mt940Dialect) -> None:
        self.source = source
        self.d = dialect
        self.reset()

    def reset(self) -> None:
        self.ref: str | None = None
        self.account: str | None = None
        self.seq: int | None = None
        self.page: int | None = None
        self.opening: int | None = None
        self.ccy: str | None = None
        self.open_date: date | None = None
        self.start_line = 0
        self.head_sent = False
        self.closing: int | None = None
        self.closing_ccy: str | None = None
        self.closing_date: date | None = None
        self.closing_line: int | None = None
        self.pending: _Pending | None = None
        self.totals: dict[str, int] = {}
        self.kind = "mt940"

    def fail(self, line: int, field: str, message: str, code: str = "invalid_field") -> FieldError:
        return FieldError(message, source=self.source, line=line, field=field, code=code)

    def head(self, line: int) -> Head:
        if self.ref is None:
            raise self.fail(line, ":20:", "statement without :20: reference", "missing_field")
        if self.account is None:
            raise self.fail(line, ":25:", "statement without :25: account", "missing_field")
        if self.ccy is None:
            raise self.fail(line, ":60F:", "statement without :60F:/:60M: opening balance", "missing_field")
        self.head_sent = True
        st = Statement(
            source_format=self.kind if self.d.name in ("mt940", "mt942") else f"{self.kind}:{self.d.name}",
            statement_id=f"{self.ref}/{self.seq if self.seq is not None else ''}"
                         f"{'/' + str(self.page) if self.page else ''}",
            account=self.account, currency=self.ccy, sequence=self.seq, created_at=None,
            from_date=self.open_date, to_date=None, opening_balance_minor=self.opening,
            closing_balance_minor=None, entries=(), page=self.page)
        return Head(st, self.start_line, None, requires_balances=self.kind == "mt940")

    def entry(self, p: _Pending) -> StatementEntry:
        m, line = p.match, p.line
        ccy = self.ccy or ""
        vdate = _yymmdd(m["vdate"], self.source, line, ":61:/value date")
        booking = vdate
        if m["edate"]:
            month, day = int(m["edate"][:2]), int(m["edate"][2:])
            year = vdate.year
            if vdate.month == 12 and month == 1:
                year += 1
            elif vdate.month == 1 and month == 12:
                year -= 1
            try:
                booking = date(year, month, day)
            except ValueError as e:
                raise self.fail(line, ":61:/entry date", f"invalid entry date {m['edate']!r}",
                                "invalid_date") from e
        mark = m["mark"]
        cd: CreditDebit = "CRDT" if mark in ("C", "RD") else "DBIT"
        amount = _amount(m["amount"], ccy, self.source, line, ":61:/amount")
        rest = m["rest"]
        bank_ref = None
        if "//" in rest:
            cref, _, bank_ref = rest.partition("//")
            cref_extra = ""
        else:
            cref, cref_extra = rest[:16], rest[16:]
        cref = cref.strip()
        supplementary = ((m["extra"] or "") + " " + cref_extra).strip() or None
        info = "\n".join(p.info) if p.info else None
        fields: dict[str, str] = {}
        remittance = info
        name = account = agent = None
        if info is not None and self.d.info_style == "slash_codes":
            fields = _slash_fields(info)
            remittance = fields.get("remittance_info") or info
            name, account, agent = fields.get("name"), fields.get("account"), fields.get("agent")
        if self.d.ref_is_counterparty:
            account = cref if cref and cref != "NONREF" else None
            name = cref_extra.strip() or None
            supplementary = m["extra"] or None
        return StatementEntry(
            amount_minor=amount, currency=ccy, credit_debit=cd, booking_date=booking, value_date=vdate,
            reversal=mark.startswith("R"), status="BOOK",
            entry_ref=None if cref in ("", "NONREF") else cref,
            account_servicer_ref=(bank_ref or "").strip() or None,
            end_to_end_id=fields.get("end_to_end_id"),
            remittance_info=remittance, bank_tx_code=m["ttype"], return_reason=fields.get("return_reason"),
            counterparty=Party(name=name, account=account, agent=agent),
            mandate_or_serial=supplementary, line=line)

    def field(self, tag: str, value: str, line: int) -> Iterator[Item]:
        if tag != "86" and self.pending is not None:
            yield self.entry(self.pending)
            self.pending = None
        if tag == "20":
            yield from self.end(line)
            self.reset()
            self.ref = value.strip()
            self.start_line = line
        elif self.ref is None:
            raise self.fail(line, f":{tag}:", f"field :{tag}: before the :20: that starts a statement",
                            "malformed_statement")
        elif tag == "25":
            acct = value.strip()
            if self.d.strip_account_currency and re.search(r"[A-Z]{3}$", acct):
                acct = acct[:-3]
            self.account = acct
        elif tag in ("28", "28C"):
            m = _28_RE.match(value.strip())
            if m is None:
                raise self.fail(line, f":{tag}:", f"invalid statement number {value.strip()!r}")
            self.seq = int(m["seq"])
            self.page = int(m["page"]) if m["page"] and int(m["page"]) > 0 else None
        elif tag in ("60F", "60M"):
            m = _BAL_RE.match(value.strip())
            if m is None:
                raise self.fail(line, f":{tag}:", f"invalid opening balance {value.strip()!r}")
            self.ccy = m["ccy"]
            amt = _amount(m["amount"], self.ccy, self.source, line, f":{tag}:/amount")
            self.opening = amt if m["cd"] == "C" else -amt
            self.open_date = _yymmdd(m["date"], self.source, line, f":{tag}:/date")
        elif tag == "34F":
            self.kind = "mt942"
            self.ccy = self.ccy or value.strip()[:3]
        elif tag == "13D":
            self.kind = "mt942"
        elif tag == "61":
            if not self.head_sent:
                yield self.head(line)
            m = _LINE_RE.match(value)
            if m is None:
                raise self.fail(line, ":61:", f"invalid statement line {value.splitlines()[0]!r}")
            self.pending = _Pending(m, line)
        elif tag == "86":
            if self.pending is not None:
                self.pending.info.append(value.strip())
            # :86: after the closing balance is statement-level information: not an entry's
        elif tag in ("62F", "62M"):
            m = _BAL_RE.match(value.strip())
            if m is None:
                raise self.fail(line, f":{tag}:", f"invalid closing balance {value.strip()!r}")
            amt = _amount(m["amount"], m["ccy"], self.source, line, f":{tag}:/amount")
            self.closing = amt if m["cd"] == "C" else -amt
            self.closing_ccy = m["ccy"]
            self.closing_date = _yymmdd(m["date"], self.source, line, f":{tag}:/date")
            self.closing_line = line
        elif tag in ("90D", "90C"):
            m = _TOTAL_RE.match(value.strip())
            if m is None:
                raise self.fail(line, f":{tag}:", f"invalid totals {value.strip()!r}")
            side = "debit" if tag == "90D" else "credit"
            self.totals[side + "_count"] = int(m["n"])
            self.totals[side + "_minor"] = _amount(m["amount"], m["ccy"], self.source, line, f":{tag}:")
        # :21:, :64:, :65:, :13D: and unknown tags carry nothing the canonical statement needs

    def end(self, line: int) -> Iterator[Item]:
        if self.ref is None:
            return
        if self.pending is not None:
            yield self.entry(self.pending)
            self.pending = None
        if not self.head_sent:
            yield self.head(line)
        if self.kind == "mt940" and self.closing is None:
            raise self.fail(line, ":62F:", f"statement {self.ref} ends without :62F:/:62M: closing balance",
                            "missing_field")
        declared = Summary(**self.totals) if self.totals else None
        yield Tail(line=self.closing_line or line, closing_balance_minor=self.closing,
                   closing_currency=self.closing_ccy, declared=declared, to_date=self.closing_date)
        self.ref = None


def _slash_fields(info: str) -> dict[str, str]:
    flat = info.replace("\n", "")
    out: dict[str, str] = {}
    parts = _SLASH_RE.split(flat)
    for i in range(1, len(parts) - 1, 2):
        key = _SLASH_CODES.get(parts[i])
        if key and parts[i + 1].strip():
            out[key] = parts[i + 1].strip().rstrip("/")
    remi = out.get("remittance_info")
    if remi is not None:  # ING/SEPA style: /REMI/USTD//free text/ or /REMI/STRD/CUR/reference/
        for prefix in ("USTD//", "STRD/CUR/", "STRD/ISO/"):
            if remi.startswith(prefix):
                out["remittance_info"] = remi[len(prefix):].strip("/") or remi
    for party_key in ("cntp", "ordp", "benm"):  # /CNTP/account/BIC/name/
        if party_key in out and "name" not in out:
            bits = out[party_key].split("/")
            if len(bits) >= 3:
                out.setdefault("account", bits[0])
                out.setdefault("agent", bits[1])
                out["name"] = bits[2]
    return out


def _lines(stream: IO[bytes] | bytes, encoding: str, source: str) -> Iterator[tuple[int, str]]:
    raw: IO[bytes] = io.BytesIO(stream) if isinstance(stream, (bytes, bytearray)) else stream
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    lineno = 0
    buf = ""
    first = True
    while True:
        chunk = raw.read(1 << 20)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as e:
            raise FieldError(f"not valid {encoding}: {e.reason} (after line {lineno})", source=source,
                             line=lineno + 1 + buf.count("\n"), field="encoding", code="bad_encoding") from e
        if first and text.startswith("\ufeff"):
            text = text[1:]
        first = False
        buf += text
        parts = buf.split("\n")
        buf = parts.pop()
        for part in parts:
            lineno += 1
            yield lineno, part.rstrip("\r")
        if not chunk:
            break
    if buf:
        yield lineno + 1, buf.rstrip("\r")


def iter_mt940_items(stream: IO[bytes] | bytes, *, source: str,
                     dialect: Mt940Dialect = DEFAULT_DIALECT) -> Iterator[Item]:
    """The flat item stream of an MT940/MT942 file (any number of messages and statements)."""
    p = _Parser(source, dialect)
    tag: str | None = None
    value: list[str] = []
    tag_line = 0
    seen = False
    for lineno, text in _lines(stream, dialect.encoding, source):
        if "\x00" in text:
            raise FieldError("NUL byte in text", source=source, line=lineno, field="encoding",
                             code="bad_encoding")
        if text[:1] == ":":
            m = _TAG_RE.match(text)
            if m is not None:
                if tag is not None:
                    yield from p.field(tag, "\n".join(value), tag_line)
                tag, tag_line = m.group(1), lineno
                value = [text[m.end():]]
                seen = seen or tag == "20"
                continue
        if text.startswith(("-}", "{")) or text.strip() == "-" or (tag is None and not text.startswith(":")):
            # envelope, terminator or bank preamble: ends the current field (and message)
            if tag is not None:
                yield from p.field(tag, "\n".join(value), tag_line)
                tag = None
            if text.strip() in ("-", "-}") or text.startswith("-}"):
                yield from p.end(lineno)
            if "{4:" in text:  # a block-4 opener may share the line with a first field
                after = text.split("{4:", 1)[1]
                m = _TAG_RE.match(after)
                if m is not None:
                    tag, tag_line, value = m.group(1), lineno, [after[m.end():]]
                    seen = seen or tag == "20"
            continue
        if tag is None:
            continue
        if len(value) > 200:
            raise FieldError(f"field :{tag}: longer than 200 lines", source=source, line=lineno,
                             field=f":{tag}:", code="text_too_long")
        value.append(text)
    if tag is not None:
        yield from p.field(tag, "\n".join(value), tag_line)
    yield from p.end(tag_line)
    if not seen:
        raise MappingError("no :20: statement in the file", source=source, code="no_statement")


# --- writing -----------------------------------------------------------------------------------

def _yy(d: date) -> str:
    return d.strftime("%y%m%d")


def _amt(minor: int, ccy: str) -> str:
    return to_decimal_text(abs(minor), ccy).replace(".", ",") if "." in to_decimal_text(0, ccy) \
        else to_decimal_text(abs(minor), ccy) + ","


def render_mt940(statements: Iterable[Statement], *, sender: str = "CVHUBSANDBOX") -> str:
    """MT940 text for statements (each must have both balances and dated entries). Lines end with CRLF."""
    out: list[str] = []
    for st in statements:
        if st.opening_balance_minor is None or st.closing_balance_minor is None:
            raise MappingError(f"statement {st.statement_id} needs both balances for MT940",
                               field="balance", code="render_error")
        ccy = st.currency
        open_d = st.from_date or (st.entries[0].value_date if st.entries else None) or date(1970, 1, 1)
        close_d = st.to_date or open_d
        seq = "" if st.sequence is None else f"{st.sequence:05d}"
        page = f"/{st.page}" if st.page else ""
        ref = st.statement_id.split("/")[0][:16]
        out += [f"{{1:F01{sender[:12]:<12}0000000000}}{{2:O940}}{{4:", f":20:{ref}", f":25:{st.account}",
                f":28C:{seq}{page}",
                f":60F:{'C' if st.opening_balance_minor >= 0 else 'D'}{_yy(open_d)}{ccy}"
                f"{_amt(st.opening_balance_minor, ccy)}"]
        for e in st.entries:
            vd = e.value_date or e.booking_date or open_d
            bd = e.booking_date or vd
            mark = ("R" if e.reversal else "") + (
                ("D" if e.credit_debit == "CRDT" else "C") if e.reversal else e.credit_debit[0])
            ttype = e.bank_tx_code if e.bank_tx_code and re.match(r"^[NFS][A-Z0-9]{3}$", e.bank_tx_code) \
                else "NTRF"
            line = f":61:{_yy(vd)}{bd.strftime('%m%d')}{mark}{_amt(e.amount_minor, ccy)}{ttype}" \
                   f"{(e.entry_ref or 'NONREF')[:16]}"
            if e.account_servicer_ref:
                line += f"//{e.account_servicer_ref[:16]}"
            out.append(line)
            if e.mandate_or_serial:
                out.append(e.mandate_or_serial[:34])
            if e.remittance_info:
                info = e.remittance_info
                chunks = [info[i:i + 65] for i in range(0, len(info), 65)][:6]
                out.append(":86:" + chunks[0])
                out.extend(chunks[1:])
        out.append(f":62F:{'C' if st.closing_balance_minor >= 0 else 'D'}{_yy(close_d)}{ccy}"
                   f"{_amt(st.closing_balance_minor, ccy)}")
        out.append("-}")
    return "\r\n".join(out) + "\r\n"
