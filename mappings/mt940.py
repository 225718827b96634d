"""SWIFT MT940 statements and MT942 interim reports -> canonical statements, streaming; and a writer.

``iter_mt940_items`` reads the text line by line (constant memory; the caller hands it bytes or a
binary stream) and yields the flat item stream of ``mappings.statement_stream``. It tolerates the
envelopes banks wrap around the fields (``{1:...}{4:`` blocks, ``-`` / ``-}`` terminators, bank
preamble lines before the first ``:20:``), ``:28:`` and ``:28C:``, ``:60F/M:``, ``:62F/M:``, repeated
or multi-line ``:86:``, and MT942's ``:90D:/:90C:`` totals (checked like camt TxsSummry).
Bank variants are ``Mt940Dialect`` values (see ``mappings.profiles``). ``render_mt940`` writes
statements back (sandboxes, round-trip property tests). No I/O beyond the stream handed in.

The optional compiled accelerator ``mappings/_mt940_accel.pyx`` (``_ACCEL``) takes over the lines
of common-shape ``:61:``/``:86:`` records for the plain dialect; this module stays the reference
and parses everything the accelerator refuses (see ``iter_mt940_items``).
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import IO, TYPE_CHECKING, Literal, cast

from ledger.canonical import CreditDebit, Party, Statement
from ledger.money import CURRENCY_EXPONENT, AmountError, to_decimal_text, to_minor
from mappings import accel
from mappings.errors import FieldError, MappingError
from mappings.statement_stream import EntryRun, Head, Item, Summary, Tail, make_entry

if TYPE_CHECKING:
    from mappings._mt940_accel import Lines

#: the compiled fast path (``mappings/_mt940_accel.pyx``) or None; looked up per parse, so tests
#: can switch it off (``monkeypatch.setattr(mt940, "_ACCEL", None)``)
_ACCEL = accel.load("mt940")

_TAG_RE = re.compile(r"\A:(\d\d[A-Z]?):", re.ASCII)
_BAL_RE = re.compile(r"\A(?P<cd>[CD])(?P<date>\d{6})(?P<ccy>[A-Z]{3})(?P<amount>\d[\d,]*)\Z", re.ASCII)
_LINE_RE = re.compile(
    r"\A(?P<vdate>\d{6})(?P<edate>\d{4})?(?P<mark>RC|RD|C|D)(?P<funds>[A-Z])?(?P<amount>\d[\d,]{0,15})"
    r"(?P<ttype>[NFS][A-Z0-9]{3})(?P<rest>[^\n]*)(?:\n(?P<extra>.*))?\Z", re.DOTALL | re.ASCII)
_TOTAL_RE = re.compile(r"\A(?P<n>\d{1,5})(?P<ccy>[A-Z]{3})(?P<amount>\d[\d,]*)\Z", re.ASCII)
_28_RE = re.compile(r"\A(?P<seq>\d{1,5})(?:/(?P<page>\d{1,5}))?\Z", re.ASCII)
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
_BOOKING_CACHE: dict[tuple[str, str], tuple[date, date]] = {}


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
    if exp is not None and len(frac) <= exp and len(whole) <= 18 and whole.isdigit() and whole.isascii() \
            and (not frac or (frac.isdigit() and frac.isascii())):  # the common case, exactly
        minor: int = int(whole) * 10**exp + (int(frac) * 10 ** (exp - len(frac)) if frac else 0)
        return minor
    try:
        return to_minor(text.replace(",", ".", 1), ccy)
    except AmountError as e:
        raise FieldError(f"{e} (amount {text!r})", source=source, line=line, field=field, code=e.code) from e


class _Parser:
    """Field-level state machine. ``field``/``end`` append the items they complete to ``out``
    (plain methods, not generators: they run once per field of a file with millions of fields)."""

    def __init__(self, source: str, dialect: Mt940Dialect) -> None:
        self.source = source
        self.d = dialect
        self.plain = dialect.info_style == "free" and not dialect.ref_is_counterparty
        self.out: list[Item] = []
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
        # the :61: waiting for its :86: lines: match, line, info lines
        self.pending: re.Match[str] | None = None
        self.pending_line = 0
        self.pending_info: list[str] = []
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

    def flush_entry(self) -> None:
        """Map the pending :61: (with the :86: lines collected for it) and append it to ``out``."""
        m, line, info_lines = self.pending, self.pending_line, self.pending_info
        assert m is not None
        self.pending = None
        self.pending_info = []
        ccy = self.ccy or ""
        vdate_s, edate, mark, _funds, amount_s, ttype, rest, extra = m.groups()
        if edate:
            dates = _BOOKING_CACHE.get((vdate_s, edate))
            if dates is None:
                dates = self.entry_dates(vdate_s, edate, line)
            vdate, booking = dates
        else:
            vdate = _DATE_CACHE.get(vdate_s) or _yymmdd(vdate_s, self.source, line, ":61:/value date")
            booking = vdate
        cd: CreditDebit = "CRDT" if mark in {"C", "RD"} else "DBIT"
        exp = CURRENCY_EXPONENT.get(ccy)
        whole, _, frac = amount_s.partition(",")
        if exp is not None and len(frac) <= exp and len(whole) <= 18 and whole.isdigit() and whole.isascii() \
                and (not frac or (frac.isdigit() and frac.isascii())):  # _amount's common case, inlined
            amount: int = int(whole) * 10**exp + (int(frac) * 10 ** (exp - len(frac)) if frac else 0)
        else:
            amount = _amount(amount_s, ccy, self.source, line, ":61:/amount")
        bank_ref = None
        if "//" in rest:
            cref, _, bank_ref = rest.partition("//")
            cref_extra = ""
        else:
            cref, cref_extra = rest[:16], rest[16:]
        cref = cref.strip()
        supplementary = None if extra is None and not cref_extra \
            else ((extra or "") + " " + cref_extra).strip() or None
        info = ("\n".join(info_lines) if len(info_lines) > 1 else info_lines[0]) if info_lines else None
        if self.plain:
            self.out.append(make_entry(
                amount, ccy, cd, booking, vdate, mark[0] == "R", "BOOK",
                None if cref in {"", "NONREF"} else cref, (bank_ref or "").strip() or None,
                None, None, supplementary, info, ttype, None, _NO_PARTY, line, ()))
            return
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
            supplementary = extra or None
        party = _NO_PARTY if name is None and account is None and agent is None \
            else Party(name=name, account=account, agent=agent)
        self.out.append(make_entry(
            amount, ccy, cd, booking, vdate, mark[0] == "R", "BOOK",
            None if cref in ("", "NONREF") else cref, (bank_ref or "").strip() or None,
            fields.get("end_to_end_id"), None, supplementary, remittance, ttype,
            fields.get("return_reason"), party, line, ()))

    def entry_dates(self, vdate_s: str, edate: str, line: int) -> tuple[date, date]:
        """(value date, booking date) of a :61: with an entry date MMDD (year taken from the value date)."""
        vdate = _yymmdd(vdate_s, self.source, line, ":61:/value date")
        month, day = int(edate[:2]), int(edate[2:])
        year = vdate.year
        if vdate.month == 12 and month == 1:
            year += 1
        elif vdate.month == 1 and month == 12:
            year -= 1
        try:
            booking = date(year, month, day)
        except ValueError as e:
            raise self.fail(line, ":61:/entry date", f"invalid entry date {edate!r}", "invalid_date") from e
        if len(_BOOKING_CACHE) < 4096:  # statements repeat a few dates many times
            _BOOKING_CACHE[vdate_s, edate] = (vdate, booking)
        return vdate, booking

    def field(self, tag: str, value: str, line: int) -> None:
        if tag == "86":
            if self.ref is None:
                raise self.fail(line, ":86:", "field :86: before the :20: that starts a statement",
                                "malformed_statement")
            if self.pending is not None:
                self.pending_info.append(value.strip())
            # :86: after the closing balance is statement-level information: not an entry's
            return
        if self.pending is not None:
            self.flush_entry()
        if tag == "20":
            self.end(line)
            self.reset()
            self.ref = value.strip()
            self.start_line = line
        elif self.ref is None:
            raise self.fail(line, f":{tag}:", f"field :{tag}: before the :20: that starts a statement",
                            "malformed_statement")
        elif tag == "61":
            if not self.head_sent:
                self.out.append(self.head(line))
            m = _LINE_RE.match(value)
            if m is None:
                raise self.fail(line, ":61:", f"invalid statement line {(value.splitlines() or [''])[0]!r}")
            self.pending = m
            self.pending_line = line
        elif tag == "25":
            acct = value.strip()
            if self.d.strip_account_currency and re.search(r"[A-Z]{3}\Z", acct):
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

    def end(self, line: int) -> None:
        if self.ref is None:
            return
        if self.pending is not None:
            self.flush_entry()
        if not self.head_sent:
            self.out.append(self.head(line))
        if self.kind == "mt940" and self.closing is None:
            raise self.fail(line, ":62F:", f"statement {self.ref} ends without :62F:/:62M: closing balance",
                            "missing_field")
        declared = Summary(**self.totals) if self.totals else None
        self.out.append(Tail(line=self.closing_line or line, closing_balance_minor=self.closing,
                             closing_currency=self.closing_ccy, declared=declared, to_date=self.closing_date))
        self.ref = None


_NO_PARTY = Party()


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


_CHUNK = 1 << 20   # bytes read and decoded at a time (tests make it small to exercise the seams)
_PIECE = 1 << 16   # the fast path decodes a chunk in pieces of this many bytes (64 KiB: measured best)


def _reader(stream: IO[bytes] | bytes, encoding: str) -> tuple[IO[bytes], codecs.IncrementalDecoder]:
    raw: IO[bytes] = io.BytesIO(stream) if isinstance(stream, (bytes, bytearray)) else stream
    return raw, codecs.getincrementaldecoder(encoding)("strict")


def _bad_encoding(e: UnicodeDecodeError, encoding: str, source: str, lines_before: int) -> FieldError:
    """The error for a chunk that does not decode. Both readers decode a whole chunk before
    handing out any of its lines, so the failing line is the one after those handed out."""
    return FieldError(f"not valid {encoding}: {e.reason} (after line {lines_before})", source=source,
                      line=lines_before + 1, field="encoding", code="bad_encoding")


def _lines(stream: IO[bytes] | bytes, encoding: str, source: str) -> Iterator[list[str]]:
    """The decoded text in batches of whole lines (about 1 MiB each), line ends and a BOM removed.

    The caller numbers the lines itself (line k of the n-th batch follows the previous batches);
    a decoding error names the line it occurs on.
    """
    raw, decoder = _reader(stream, encoding)
    lineno = 0
    buf = ""  # the unterminated last line so far (never contains "\n")
    first = True
    while True:
        chunk = raw.read(_CHUNK)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as e:
            raise _bad_encoding(e, encoding, source, lineno) from e
        if first and text.startswith("\ufeff"):
            text = text[1:]
        first = False
        buf += text
        parts = buf.split("\n")
        buf = parts.pop()
        if parts:
            lineno += len(parts)
            if "\r" in text or "\r" in parts[0]:
                parts = [part.rstrip("\r") for part in parts]
            yield parts
        if not chunk:
            break
    if buf:
        yield [buf.rstrip("\r")]


def _cursors(stream: IO[bytes] | bytes, encoding: str, source: str, lines: type[Lines]) -> Iterator[Lines]:
    """``_lines`` for the compiled fast path: the same lines, as ``Lines`` cursors over decoded text.

    The stream is read and decoded exactly as ``_lines`` does (``_CHUNK`` bytes at a time, the
    whole chunk decoded before any of its lines is handed out, so a decoding error is the same
    error at the same point), the BOM and line ends likewise; but a chunk is decoded in pieces of
    ``_PIECE`` bytes (smaller strings: measurably faster to allocate and scan) and its lines are
    not split into a list: a cursor hands out one line at a time, or a run of entries
    (``Lines.entries``). A line straddling two pieces gets a cursor of its own. Each cursor must
    be exhausted before the next is asked for (its ``count`` numbers the lines for the error).
    """
    raw, decoder = _reader(stream, encoding)
    lineno = 0  # lines handed out by the cursors so far
    buf = ""    # the unterminated last line of the text so far (never contains "\n")
    first = True
    piece = max(_PIECE, 4)
    while True:
        chunk = raw.read(_CHUNK)
        try:
            texts = [decoder.decode(chunk, final=not chunk)] if len(chunk) <= piece else \
                [decoder.decode(chunk[k:k + piece]) for k in range(0, len(chunk), piece)]
        except UnicodeDecodeError as e:
            raise _bad_encoding(e, encoding, source, lineno) from e
        texts.reverse()
        while texts:
            text = texts.pop()  # (dropped as soon as its lines are read)
            # _lines strips a BOM at the start of the first chunk's text: the first piece with
            # any text (one of a codec that consumes its own BOM may decode to nothing)
            start = 1 if first and text.startswith("\ufeff") else 0
            first = first and not text
            last_nl = text.rfind("\n")
            if last_nl < start:
                buf += text[start:]
                continue
            if buf:
                nl = text.index("\n", start)
                cur = lines(buf + text[start:nl + 1], 0, len(buf) + nl + 1 - start)
                yield cur
                lineno += cur.count
                start = nl + 1
            if start <= last_nl:
                cur = lines(text, start, last_nl + 1)
                yield cur
                lineno += cur.count
            buf = text[last_nl + 1:]
        first = False  # (as in _lines: only the first chunk's text may start with the BOM)
        if not chunk:
            break
    if buf:
        yield lines(buf, 0, len(buf))


def iter_mt940_items(stream: IO[bytes] | bytes, *, source: str,
                     dialect: Mt940Dialect = DEFAULT_DIALECT) -> Iterator[Item]:
    """The flat item stream of an MT940/MT942 file (any number of messages and statements).

    With the compiled accelerator (``_ACCEL``, plain dialect), runs of common-shape ``:61:``/``:86:``
    records come as ``EntryRun`` items built in C; every other line goes through the same state
    machine as without it (the reference).
    """
    p = _Parser(source, dialect)
    out = p.out
    field = p.field
    tag: str | None = None
    value: list[str] = []
    tag_line = 0
    seen = False
    lineno = 0
    fast = _ACCEL if p.plain else None
    batches: Iterator[Iterable[str]] = _lines(stream, dialect.encoding, source) if fast is None \
        else _cursors(stream, dialect.encoding, source, fast.Lines)
    try:
        for batch in batches:
            for text in batch:
                lineno += 1
                if "\x00" in text:
                    raise FieldError("NUL byte in text", source=source, line=lineno, field="encoding",
                                     code="bad_encoding")
                if text[:1] == ":":
                    # a field tag, exactly _TAG_RE (^:(\d\d[A-Z]?):) without the regex call
                    if text[3:4] == ":" and text[1:3].isdecimal():
                        new_tag, start = text[1:3], 4
                    elif text[4:5] == ":" and text[1:3].isdecimal() and "A" <= text[3] <= "Z":
                        new_tag, start = text[1:4], 5
                    else:
                        new_tag = None
                    if new_tag is not None:
                        if not new_tag.isascii():  # ":６１:": an entry written in other digits
                            raise FieldError(f"field tag {text[:5]!r} is not written in ASCII digits",
                                             source=source, line=lineno, field="tag", code="invalid_field")
                        if tag is not None:
                            if tag == "86" and p.pending is not None:  # the common :86: of an entry
                                p.pending_info.append(
                                    (value[0] if len(value) == 1 else "\n".join(value)).strip())
                            else:
                                field(tag, value[0] if len(value) == 1 else "\n".join(value), tag_line)
                                if out:
                                    yield from out
                                    out.clear()
                        if fast is not None and new_tag == "61" and p.ref is not None:
                            # the compiled run of common-shape records from this :61: line on
                            ccy = p.ccy or ""
                            run = cast("Lines", batch).entries(lineno, ccy, CURRENCY_EXPONENT.get(ccy, -1),
                                                               _NO_PARTY)
                            if run is not None:
                                # field("61") would begin with these two (and raise what they
                                # raise: the run's lines are all clean, none would fail before)
                                if p.pending is not None:
                                    p.flush_entry()
                                if not p.head_sent:
                                    out.append(p.head(lineno))
                                if out:
                                    yield from out
                                    out.clear()
                                entries, nlines, credit_n, credit, debit_n, debit = run
                                yield EntryRun(entries, ccy, lineno, credit_n, credit, debit_n, debit,
                                               credit - debit)
                                lineno += nlines - 1
                                tag = None  # the run ended just before a field tag line
                                continue
                        tag, tag_line = new_tag, lineno
                        value = [text[start:]]
                        if not seen and tag == "20":
                            seen = True
                        continue
                if text.startswith(("-}", "{")) or text.strip() == "-" \
                        or (tag is None and not text.startswith(":")):
                    # envelope, terminator or bank preamble: ends the current field (and message)
                    if tag is not None:
                        field(tag, "\n".join(value), tag_line)
                        tag = None
                    if text.strip() in ("-", "-}") or text.startswith("-}"):
                        p.end(lineno)
                    if "{4:" in text:  # a block-4 opener may share the line with a first field
                        after = text.split("{4:", 1)[1]
                        m = _TAG_RE.match(after)
                        if m is not None:
                            tag, tag_line, value = m.group(1), lineno, [after[m.end():]]
                            seen = seen or tag == "20"
                    if out:
                        yield from out
                        out.clear()
                    continue
                if tag is None:
                    continue
                if len(value) > 200:
                    raise FieldError(f"field :{tag}: longer than 200 lines", source=source, line=lineno,
                                     field=f":{tag}:", code="text_too_long")
                value.append(text)
        if tag is not None:
            field(tag, "\n".join(value), tag_line)
        p.end(tag_line)
        yield from out
    except MappingError:
        # hand over what the failing field completed first, as a line-by-line reader would
        done = list(out)
        out.clear()
        yield from done
        raise
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
            ttype = e.bank_tx_code if e.bank_tx_code and re.match(r"\A[NFS][A-Z0-9]{3}\Z", e.bank_tx_code) \
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
