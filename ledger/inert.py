"""Inert output text: outside data that cvhub writes for people or other systems never runs.

A payer controls the remittance text and counterparty name of the money it sends, an SRM or ERP
the ids and names it hands over; cvhub carries them into CSV, XLSX, HTML and PDF files that people
open in spreadsheets and browsers. This module is the one rule every writer applies to such text
(``docs/recon.md``, "Inert text"), cvhub.inert/1:

- **visible controls** (every format): C0/C1 control characters other than TAB, LF and CR, DEL,
  lone surrogates, the non-characters U+FFFE/U+FFFF, the line/paragraph separators U+2028/U+2029
  and the bidirectional embedding/override/isolate controls (U+202A-U+202E, U+2066-U+2069) are
  replaced by the visible text ``[U+XXXX]``. They cannot be stored in XLSX/XML at all, or they
  disguise what a person reads (a right-to-left override turns ``exe.txt`` into ``txt.exe``).
  This is the only lossy step; the writers record the original of every value it changes.
- **CSV cells**: a cell that a spreadsheet could read as a formula (``formula_like``) gets a
  leading apostrophe (the OWASP CSV-injection guidance), and so does a cell that already begins
  with an apostrophe, which makes the rule reversible: ``restore_csv_cell`` drops one leading
  apostrophe and gives the text back exactly. Writers quote every text cell (so separators and
  quotes inside a value stay inside it) and leave numbers (amounts, counts) as bare numbers:
  a negative amount is a number, not text to neutralise.
- **XLSX cells**: text is always a string cell (openpyxl ``data_type`` ``"s"``, never ``"f"``),
  the value unchanged, and a formula-like one also carries Excel's quote-prefix style so that
  editing the cell does not turn it into a formula either. Amounts stay numeric cells.
- **HTML**: every character that means something to HTML is escaped (``html_text``).
- **PDF**: reportlab's canvas draws text as glyphs (no markup); only controls are made visible.

``formula_like`` is deliberately wider than any one spreadsheet: after any leading whitespace or
invisible characters (spaces, NBSP, ideographic space, zero-width characters, BOM, bidi marks,
controls), the first character is ``=``, ``+``, ``-``, ``@`` or a look-alike (full-width
``＝＋－＠``, small, superscript and subscript forms, anything that NFKC folds to one of them,
dash punctuation, the minus sign, heavy plus/minus/equals), or the value starts with TAB, CR or LF
(LibreOffice's "trim spaces" and Excel's type-ahead both strip the leading blanks; CJK Excel
folds full-width operators). A value that merely looks odd is never refused: the file still flows.

Imports nothing of the project (it belongs on the canonical floor). Never decides what counts as
outside data: the writers pass every text value through it and numbers around it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

RULE = "cvhub.inert/1"

_UNSAFE_CLASS = ("\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                 "\ud800-\udfff\ufffe\uffff")
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
# The common case in one match: starts with a letter, digit or CJK ideograph (never a trigger) and
# holds no unsafe character, or is empty: nothing to do.
_PLAIN = re.compile(f"(?:[0-9A-Za-z_.,:;/#()\\[\\]\u3400-\u4dbf\u4e00-\u9fff][^{_UNSAFE_CLASS}]*)?\\Z")
_TRIGGERS = frozenset("=+-@")
# Look-alikes NFKC does not fold to an ASCII trigger (the folded ones — full-width, small,
# superscript, subscript forms — are caught through NFKC; dash punctuation through its category).
_LOOKALIKES = frozenset("\u2212\u02d7\u2795\u2796\U0001f7f0\u2052")
_LEADING_BREAKS = frozenset("\t\r\n")
_PLAIN_START = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.,:;/#()[]")


def _visible(m: re.Match[str]) -> str:
    return f"[U+{ord(m.group()):04X}]"


def visible_text(text: str) -> str:
    """``text`` with every unsafe character (controls, bidi overrides, ...) shown as ``[U+XXXX]``."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_visible, text)


def has_unsafe_chars(text: str) -> bool:
    """True if ``visible_text`` would change ``text``."""
    return _UNSAFE.search(text) is not None


def _is_trigger(ch: str) -> bool:
    if ch in _TRIGGERS or ch in _LOOKALIKES:
        return True
    if ch.isascii():
        return False
    return unicodedata.category(ch) == "Pd" or unicodedata.normalize("NFKC", ch)[:1] in _TRIGGERS


def formula_like(text: str) -> bool:
    """True if a spreadsheet could take ``text`` for a formula or command (see the module doc)."""
    if not text or text[0] in _PLAIN_START:
        return False
    for ch in text:
        if ch in _LEADING_BREAKS:
            return True
        if ch.isspace() or unicodedata.category(ch) in ("Cf", "Cc", "Zs"):
            continue
        return _is_trigger(ch)
    return False


def csv_cell(text: str) -> str:
    """The CSV form of one outside text value (visible controls; apostrophe when formula-like)."""
    if _PLAIN.match(text):
        return text
    v = visible_text(text)
    if v[:1] == "'" or formula_like(v):
        return "'" + v
    return v


def restore_csv_cell(cell: str) -> str:
    """The text a ``csv_cell`` came from (exact unless ``visible_text`` had to change it)."""
    return cell[1:] if cell[:1] == "'" else cell


CsvValue = str | int | Decimal | date | None


def csv_row(values: Iterable[CsvValue]) -> list[str | int | Decimal]:
    """One CSV row: text through ``csv_cell``; ints and Decimals stay numbers (write them with
    ``csv.QUOTE_NONNUMERIC`` so that every text cell is quoted and no number is); dates as ISO
    text; ``None`` as an empty text cell."""
    plain = _PLAIN.match
    return [v if type(v) is str and plain(v) else _csv_value(v) for v in values]


def _csv_value(v: CsvValue) -> str | int | Decimal:
    if v is None:
        return ""
    if isinstance(v, str):
        return csv_cell(v)
    if isinstance(v, bool):
        raise TypeError("csv_row: booleans have no agreed spreadsheet form; pass text")
    if isinstance(v, (int, Decimal)):
        return v
    return v.isoformat()


def xlsx_text(text: str) -> tuple[str, bool]:
    """The value of an XLSX string cell for ``text`` and whether it needs the quote-prefix style."""
    if _PLAIN.match(text):
        return text, False
    v = visible_text(text)
    return v, formula_like(v)


def html_text(text: str) -> str:
    """``text`` escaped for HTML element content and attribute values, controls made visible."""
    return html.escape(visible_text(text), quote=True)


def pdf_text(text: str) -> str:
    """``text`` for a reportlab canvas string (controls made visible; the canvas has no markup)."""
    return visible_text(text)


def json_text(serialised: str) -> str:
    """A JSON document (``json.dumps(..., ensure_ascii=False)``) with its unsafe characters written
    as ``\\uXXXX`` escapes: the same data for any JSON parser, nothing hidden from a person."""
    if _UNSAFE.search(serialised) is None:
        return serialised
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", serialised)
