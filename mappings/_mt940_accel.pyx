# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The MT940/MT942 parser's compiled fast path (optional; ``mappings.mt940`` is the reference).

``Lines(text, start, end)`` walks the lines of ``text[start:end]`` (decoded text that is a run of
whole ``\\n``-terminated lines, or the file's last unterminated line) exactly like the pure-Python
reader's ``_lines`` batches: split on ``\\n`` only, trailing ``\\r`` removed; iterating it yields each
line as a ``str`` (only the lines the Python state machine looks at become objects).

``Lines.entries(...)``, called by ``iter_mt940_items`` right after the cursor returned a ``:61:``
line, consumes a *run* of consecutive statement lines of the common shape and returns the
``StatementEntry`` objects built for them (slot by slot, ``mappings/_fastobj.pxd``) with the run's
totals, or None. It accepts a ``:61:`` record only when everything about it is plain:

* the ``:61:`` body matches the ASCII subset of ``mt940._LINE_RE`` (YYMMDD[MMDD], C/D/RC/RD, optional
  funds letter, ``digits[,digits]`` with at most the currency's decimals, ``[NFS]XXX`` type code);
  both dates valid; amount below 10**18 minor units;
* it is followed by at most ``MAX_LINES`` lines in all: continuation lines of the ``:61:``
  (supplementary details) and ``:86:`` fields with their continuation lines;
* the record's end is *visible*: the next line is another field tag (not ``:86:``) in this
  cursor, and for the last record of a run the field starting there is complete in the cursor
  too, every line NUL-free: the Python parser flushes a record when the field after it is
  complete, so nothing it reads before that point may fail (``_field_completes``).

Anything else (a NUL byte, an envelope or ``-`` terminator, a tag written with non-ASCII digits,
an odd amount or date, a record cut by the end of the decoded piece, ...) ends the run *before*
that record, and the Python code parses it, raising whatever it raises. The fast path never
raises a mapping error and never guesses; refusing is always safe. The values are computed
exactly as ``mt940._Parser.flush_entry`` does for the plain dialect (``Mt940Dialect.info_style
== "free"`` and not ``ref_is_counterparty``), and the items come in the same order with the same
error at the same point; ``tests/mappings/test_mt940_accel.py`` holds the two paths to that.

C-level notes: the text is read through its PEP 393 buffer (``PyUnicode_DATA``, one to four bytes
per code point; every scanning function is compiled for each width); substrings are made with
``PyUnicode_Substring`` (canonical, so they compare equal to the Python path's slices); entries
are allocated empty and filled slot by slot, and taken off the cyclic GC (see ``_take_run``).
"""

from cpython.datetime cimport date, date_new, import_datetime
from cpython.long cimport PyLong_FromLongLong, PyLong_FromSsize_t
from cpython.object cimport PyObject
from cpython.unicode cimport (
    Py_UNICODE_ISSPACE,
    PyUnicode_DATA,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_READ,
    PyUnicode_Substring,
)
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memchr, memcpy

from mappings._fastobj cimport SlotLayout, cvhub_set_slot, layout_init, layout_new

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void *op)

import_datetime()

from ledger.canonical import StatementEntry

cdef SlotLayout _ENTRY
try:
    layout_init(&_ENTRY, StatementEntry, (
        "amount_minor", "currency", "credit_debit", "booking_date", "value_date", "reversal",
        "status", "entry_ref", "account_servicer_ref", "end_to_end_id", "instruction_id",
        "mandate_or_serial", "remittance_info", "bank_tx_code", "return_reason", "counterparty",
        "line", "transactions"))
except ValueError as e:  # ledger.canonical changed shape: accel.load() reports "not available"
    raise ImportError(f"mappings._mt940_accel cannot build StatementEntry: {e}") from e

# Slot indices in StatementEntry's field order (checked by layout_init above).
cdef enum:
    F_AMOUNT, F_CCY, F_CD, F_BOOKING, F_VALUE, F_REVERSAL, F_STATUS, F_ENTRY_REF, F_ACCT_REF, F_E2E
    F_INSTR, F_MANDATE, F_REMIT, F_BTC, F_RTR, F_PARTY, F_LINE, F_TXS

cdef enum:
    # most lines one record (its :61: line, continuation lines, :86: fields) may have on the fast
    # path; longer records go to Python (which also enforces the 200-lines-per-field limit)
    MAX_LINES = 64

cdef enum:  # line classes (see _classify)
    L_CONT = 0      # a continuation line of the current field
    L_TAG61 = 1     # ":61:"
    L_TAG86 = 2     # ":86:"
    L_TAG = 3       # any other field tag line (":NN:" or ":NNA:", ASCII digits)
    L_ENVELOPE = 4  # envelope / terminator line ("{...", "-}...", strip() == "-"): ends the field
    L_ODD = 5       # a line the Python code must judge (a tag written with non-ASCII digits?)

cdef str _CRDT = "CRDT"
cdef str _DBIT = "DBIT"
cdef str _BOOK = "BOOK"
cdef str _NL = "\n"
cdef tuple _NO_TXS = ()
cdef long long _AMOUNT_LIMIT = 1000000000000000000  # 10**18 minor units: larger -> Python
cdef long long _SUM_LIMIT = 9223372036854775807     # a run's credit/debit sums stay in int64


# The code points of a str's buffer, by PyUnicode_KIND: every scanning function is compiled once
# for each (Cython fused type), the entry points dispatch on the kind of the text.
ctypedef fused char_t:
    uint8_t
    uint16_t
    uint32_t


cdef inline bint _is_digit(unsigned int c) noexcept:
    return c >= 48 and c <= 57  # ASCII '0'..'9' only (Python's \d also takes other scripts: refused)


cdef inline bint _is_upper(unsigned int c) noexcept:
    return c >= 65 and c <= 90  # ASCII 'A'..'Z', as the regex classes [A-Z]


cdef inline int _days_in_month(int year, int month) noexcept:
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    if month == 4 or month == 6 or month == 9 or month == 11:
        return 30
    return 31


cdef inline int _two(const char_t *p, Py_ssize_t i) noexcept:
    """The ASCII two-digit number at ``i`` (the caller checked both are ASCII digits)."""
    return (p[i] - 48) * 10 + (p[i + 1] - 48)


cdef inline bint _has_nul_or_nl16(uint64_t v) noexcept:
    """Whether one of the four UCS-2 code units in ``v`` is 0 or 10 (SWAR: a lane is zero iff
    subtracting 1 borrows into its top bit while that bit was clear; exact as a yes/no)."""
    cdef uint64_t x = v ^ 0x000A000A000A000AULL
    return (((v - 0x0001000100010001ULL) & ~v) | ((x - 0x0001000100010001ULL) & ~x)) \
        & 0x8000800080008000ULL != 0


cdef inline Py_ssize_t _find_nl(const char_t *p, Py_ssize_t s, Py_ssize_t end, bint *nul) noexcept:
    """Index of the first "\\n" in [s, end) (``end`` if none); sets ``nul`` if a NUL precedes it."""
    cdef const char *hit
    cdef Py_ssize_t i = s
    cdef char_t c
    cdef uint64_t v
    if char_t is uint8_t:  # one byte per character: libc's memchr
        hit = <const char *>memchr(p + s, 10, <size_t>(end - s))
        i = end if hit == NULL else <Py_ssize_t>(<const uint8_t *>hit - p)
        nul[0] = i > s and memchr(p + s, 0, <size_t>(i - s)) != NULL
    else:
        if char_t is uint16_t:  # skip four code units at a time while none is NUL or newline
            while i + 4 <= end:
                memcpy(&v, p + i, 8)  # an unaligned 8-byte load
                if _has_nul_or_nl16(v):
                    break
                i += 4
        nul[0] = False
        while i < end:
            c = p[i]
            if c == 10:
                break
            if c == 0:
                nul[0] = True
            i += 1
    return i


cdef inline Py_ssize_t _line_end(const char_t *p, Py_ssize_t s, Py_ssize_t end, Py_ssize_t *nl) noexcept:
    """The line starting at ``s``: sets ``nl`` to its "\\n" (or ``end``), returns its end without "\\r"s."""
    cdef bint nul
    nl[0] = _find_nl(p, s, end, &nul)
    return _rstrip_cr(p, s, nl[0])


cdef inline Py_ssize_t _rstrip_cr(const char_t *p, Py_ssize_t s, Py_ssize_t e) noexcept:
    """End of the line [s, e) without its trailing "\\r"s (as ``line.rstrip("\\r")``)."""
    while e > s and p[e - 1] == 13:
        e -= 1
    return e


cdef int _classify(const char_t *p, Py_ssize_t s, Py_ssize_t e) noexcept:
    """What ``iter_mt940_items`` makes of the line [s, e) (``\\r``-stripped, NUL-free) inside a field.

    Field tags: ``text[3:4] == ":" and text[1:3].isdecimal()`` or ``text[4:5] == ":" and
    text[1:3].isdecimal() and "A" <= text[3] <= "Z"``. ``isdecimal`` is true for digits of any
    script, so a would-be tag with non-ASCII characters in its digit places is L_ODD (Python
    decides). Envelope and terminator lines (``-}...``, ``{...``, ``strip() == "-"``) are L_ENVELOPE.
    """
    cdef Py_ssize_t n = e - s
    cdef unsigned int c0, c1, c2, c3
    cdef Py_ssize_t a, b
    if n == 0:
        return L_CONT
    c0 = p[s]
    if c0 == 58 and n >= 4:  # ':'
        c1 = p[s + 1]
        c2 = p[s + 2]
        c3 = p[s + 3]
        if c3 == 58 or (n >= 5 and p[s + 4] == 58):
            if c1 >= 128 or c2 >= 128:
                return L_ODD
            if _is_digit(c1) and _is_digit(c2):
                if c3 == 58:
                    if c1 == 54 and c2 == 49:  # "61"
                        return L_TAG61
                    if c1 == 56 and c2 == 54:  # "86"
                        return L_TAG86
                    return L_TAG
                if _is_upper(c3):
                    return L_TAG
        return L_CONT
    if c0 == 123:  # '{'
        return L_ENVELOPE
    if c0 == 45 and n >= 2 and p[s + 1] == 125:  # "-}"
        return L_ENVELOPE
    # strip() == "-": one '-' among (Unicode) whitespace
    a, b = s, e
    while a < b and Py_UNICODE_ISSPACE(<Py_UCS4>p[a]):
        a += 1
    while b > a and Py_UNICODE_ISSPACE(<Py_UCS4>p[b - 1]):
        b -= 1
    if b - a == 1 and p[a] == 45:
        return L_ENVELOPE
    return L_CONT


cdef bint _field_completes(const char_t *p, Py_ssize_t q, Py_ssize_t end) noexcept:
    """Whether the field whose tag line starts at ``q`` is completed, error-free, inside [q, end).

    ``iter_mt940_items`` hands a field to ``_Parser.field`` (which first flushes the pending
    record) when the line after the field's last continuation line arrives. Before that it can
    still raise: a NUL byte in those lines, more than 200 continuation lines, a decoding error of
    the next chunk. So: every line up to and including the one that completes the field (a tag
    or an envelope/terminator line) is in this cursor, NUL-free, and there are at most 200
    continuation lines; a line only Python can classify answers False.
    """
    cdef Py_ssize_t nl, e
    cdef bint nul
    cdef int cls, n = 0
    nl = _find_nl(p, q, end, &nul)
    if nul or nl >= end:
        return False
    q = nl + 1
    while q < end:
        nl = _find_nl(p, q, end, &nul)
        if nul:
            return False
        e = _rstrip_cr(p, q, nl)
        cls = _classify(p, q, e)
        if cls != L_CONT:
            return cls != L_ODD
        n += 1
        if n > 200:
            return False
        q = nl + 1
    return False


cdef inline object _stripped(object text, const char_t *p, Py_ssize_t a, Py_ssize_t b):
    """``text[a:b].strip()`` (str.strip's Unicode whitespace), without building the unstripped str."""
    while a < b and Py_UNICODE_ISSPACE(<Py_UCS4>p[a]):
        a += 1
    while b > a and Py_UNICODE_ISSPACE(<Py_UCS4>p[b - 1]):
        b -= 1
    return PyUnicode_Substring(text, a, b)


cdef object _joined(object text, Py_ssize_t *ls, Py_ssize_t *le, Py_ssize_t i, Py_ssize_t j):
    """``"\\n".join(text[ls[k]:le[k]] for k in range(i, j))``: a multi-line field's value."""
    return _NL.join([PyUnicode_Substring(text, ls[k], le[k]) for k in range(i, j)])


cdef class Lines:
    """The lines of ``text[start:end]``, one ``str`` per ``next()``, plus the entry fast path."""

    cdef readonly object text
    cdef readonly Py_ssize_t count   # lines handed out so far (by next() or taken by entries())
    cdef Py_ssize_t pos              # start of the next line
    cdef Py_ssize_t end
    cdef Py_ssize_t last             # start of the line next() returned last (-1: none / used)
    cdef int kind
    cdef const void *data            # text's buffer: valid while self.text holds the str

    def __cinit__(self, str text not None, Py_ssize_t start, Py_ssize_t end):
        if start < 0 or end > PyUnicode_GET_LENGTH(text) or start > end:
            raise ValueError("Lines: start/end outside the text")
        self.text = text
        self.kind = PyUnicode_KIND(text)
        if self.kind != 1 and self.kind != 2 and self.kind != 4:  # (a legacy, not "ready" str)
            raise ValueError("Lines: not a canonical str")
        self.data = PyUnicode_DATA(text)
        self.pos = start
        self.end = end
        self.last = -1
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef Py_ssize_t s = self.pos
        cdef Py_ssize_t nl, e
        if s >= self.end:
            raise StopIteration
        if self.kind == 1:
            e = _line_end(<const uint8_t *>self.data, s, self.end, &nl)
        elif self.kind == 2:
            e = _line_end(<const uint16_t *>self.data, s, self.end, &nl)
        else:
            e = _line_end(<const uint32_t *>self.data, s, self.end, &nl)
        self.last = s
        self.pos = nl + 1 if nl < self.end else self.end
        self.count += 1
        return PyUnicode_Substring(self.text, s, e)

    def entries(self, Py_ssize_t lineno, str ccy not None, int exp, object party):
        """Take the run of common-shape records starting at the ``:61:`` line ``next()`` just returned.

        ``lineno`` is that line's number, ``ccy`` the statement currency, ``exp`` its minor-unit
        exponent (-1: unknown, nothing is taken), ``party`` the shared empty ``Party`` entries
        carry (an atom: the entries are untracked by the cyclic GC, see ``_take_run``).
        Returns ``(entries, lines, credit_count, credit_minor, debit_count, debit_minor)`` with
        ``lines`` the number of lines taken (the ``:61:`` line included; the cursor now stands
        on the line that ended the run), or None when not even the first record qualifies.
        """
        if self.last < 0 or exp < 0 or exp > 9:
            return None
        if self.kind == 1:
            return _take_run(<const uint8_t *>self.data, self, lineno, ccy, exp, party)
        if self.kind == 2:
            return _take_run(<const uint16_t *>self.data, self, lineno, ccy, exp, party)
        return _take_run(<const uint32_t *>self.data, self, lineno, ccy, exp, party)


cdef struct Line61:
    int vyy, vmm, vdd, emm, edd    # value date YYMMDD, entry date MMDD (if has_edate)
    bint has_edate, reversal, credit
    Py_ssize_t ttype               # start of the 4-character type code; the rest follows it
    unsigned long long amount      # minor units


cdef inline bint _digits(const char_t *p, Py_ssize_t s, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(s, s + n):
        if not _is_digit(p[i]):
            return False
    return True


cdef bint _parse_61(const char_t *p, Py_ssize_t r, Py_ssize_t e, int exp,
                    Line61 *out) noexcept:
    """The ``:61:`` body [r, e) if it is in the common shape (else False: Python parses it).

    The ASCII subset of ``_LINE_RE``: ``(\\d{6})(\\d{4})?(RC|RD|C|D)([A-Z])?(\\d[\\d,]{0,15})
    ([NFS][A-Z0-9]{3})(rest)``, where the amount has at most one comma and at most ``exp``
    decimals (``_amount``'s common case), and its value stays below 10**18 minor units.
    The regex is deterministic here: a mark never starts with a digit, so ``(\\d{4})?`` takes
    four digits when they are there; the funds letter is never a digit; the amount run is
    greedy and the type code never starts with a digit or comma.
    """
    cdef unsigned int c
    cdef Py_ssize_t amt_s, comma, i
    cdef int nwhole, nfrac
    cdef unsigned long long whole, frac
    if e - r < 6 + 1 + 1 + 4 or not _digits(p, r, 6):
        return False
    out.vyy = _two(p, r)
    out.vmm = _two(p, r + 2)
    out.vdd = _two(p, r + 4)
    r += 6
    out.has_edate = _is_digit(p[r])
    out.emm = out.edd = 0
    if out.has_edate:
        if e - r < 4 or not _digits(p, r + 1, 3):
            return False
        out.emm = _two(p, r)
        out.edd = _two(p, r + 2)
        r += 4
    if r >= e:
        return False
    c = p[r]
    out.reversal = c == 82  # 'R'
    if out.reversal:
        if r + 1 >= e:
            return False
        c = p[r + 1]
        if c != 67 and c != 68:  # RC / RD
            return False
        out.credit = c == 68     # mark in {"C", "RD"} -> CRDT
        r += 2
    elif c == 67 or c == 68:     # C / D
        out.credit = c == 67
        r += 1
    else:
        return False
    if r < e and _is_upper(p[r]):  # the funds code
        r += 1
    amt_s = r
    comma = -1
    while r < e:
        c = p[r]
        if _is_digit(c):
            r += 1
        elif c == 44 and comma < 0:  # the first ','; a second one stops the run: no type code there
            comma = r
            r += 1
        else:
            break
    if r == amt_s or r - amt_s > 16 or not _is_digit(p[amt_s]):
        return False
    if e - r < 4:
        return False
    c = p[r]
    if c != 78 and c != 70 and c != 83:  # [NFS]
        return False
    for i in range(r + 1, r + 4):
        c = p[i]
        if not (_is_upper(c) or _is_digit(c)):
            return False
    out.ttype = r
    # the amount: int(whole) * 10**exp + int(frac) * 10**(exp - len(frac)), exactly
    if comma < 0:
        nwhole = <int>(r - amt_s)
        nfrac = 0
    else:
        nwhole = <int>(comma - amt_s)
        nfrac = <int>(r - comma - 1)
    if nfrac > exp or nwhole + exp > 18:  # over-precise (Python decides) / absurdly large
        return False
    whole = 0
    for i in range(amt_s, amt_s + nwhole):
        whole = whole * 10 + (p[i] - 48)
    frac = 0
    for i in range(comma + 1, comma + 1 + nfrac):
        frac = frac * 10 + (p[i] - 48)
    for i in range(exp):
        whole *= 10
    for i in range(exp - nfrac):
        frac *= 10
    out.amount = whole + frac  # < 10**(nwhole + exp) <= 10**18
    return out.amount < <unsigned long long>_AMOUNT_LIMIT


cdef inline bint _valid_date(int year, int month, int day) noexcept:
    return 1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)


cdef object _take_run(const char_t *p, Lines cur, Py_ssize_t lineno, str ccy, int exp, object party):
    cdef object text = cur.text
    cdef Py_ssize_t end = cur.end
    cdef Py_ssize_t pos = cur.last      # start of the current record's :61: line
    cdef Py_ssize_t line_no = lineno    # its line number
    # The current record's lines: content ranges (tag and trailing \r removed) and field numbers
    # (0: the :61: field and its continuation lines, k >= 1: the k-th :86: field).
    cdef Py_ssize_t ls[MAX_LINES]
    cdef Py_ssize_t le[MAX_LINES]
    cdef int lf[MAX_LINES]
    cdef int nrec, nfields, cls, k, i, first, year, byear
    cdef Py_ssize_t q, nl, e, r, rest_s, rest_e, a, b, ref_end
    cdef bint nul
    cdef Line61 m
    cdef long long credit_sum = 0, debit_sum = 0
    cdef Py_ssize_t credit_n = 0, debit_n = 0
    cdef long long date_key, last_key = -1
    cdef Py_ssize_t last_start = 0, last_line = 0  # the last record taken: its :61: line, number,
    cdef long long last_amount = 0                  # amount and side (to give it back)
    cdef bint last_credit = False
    cdef unsigned int tt[4]
    cdef list entries = []
    cdef object vdate = None, booking = None, ttype = None
    cdef object entry_ref, acct_ref, supplementary, info, values, cref_extra, extra, entry

    tt[0] = tt[1] = tt[2] = tt[3] = 0  # the type code's characters (ttype: None until the first)
    cls = L_TAG61
    while cls == L_TAG61:
        # --- the record's lines; it must end at a visible tag line other than :86: ---
        nl = _find_nl(p, pos, end, &nul)
        if nul or nl >= end:
            break
        e = _rstrip_cr(p, pos, nl)
        if _classify(p, pos, e) != L_TAG61:
            break
        ls[0] = pos + 4
        le[0] = e
        lf[0] = 0
        nrec = 1
        nfields = 0
        q = nl + 1
        while True:
            if q >= end:  # the record may go on in the next chunk: Python takes it
                cls = L_ODD
                break
            nl = _find_nl(p, q, end, &nul)
            if nul:
                cls = L_ODD
                break
            e = _rstrip_cr(p, q, nl)
            cls = _classify(p, q, e)
            if cls != L_CONT and cls != L_TAG86:
                break  # L_TAG61 / L_TAG: the record's end; else Python takes the record
            if nrec == MAX_LINES:
                cls = L_ODD
                break
            if cls == L_TAG86:
                nfields += 1
                ls[nrec] = q + 4
            else:
                ls[nrec] = q
            le[nrec] = e
            lf[nrec] = nfields
            nrec += 1
            q = nl + 1
        if cls >= L_ENVELOPE or not _parse_61(p, ls[0], le[0], exp, &m):
            break
        if m.credit:
            if credit_sum > _SUM_LIMIT - <long long>m.amount:
                break
        elif debit_sum > _SUM_LIMIT - <long long>m.amount:
            break

        # --- dates: _yymmdd and entry_dates (the entry date's year from the value date's) ---
        date_key = ((m.vyy * 100 + m.vmm) * 100 + m.vdd) * 100000 + (
            m.emm * 100 + m.edd if m.has_edate else 10000)
        if date_key != last_key:
            year = 2000 + m.vyy if m.vyy < 80 else 1900 + m.vyy
            if not _valid_date(year, m.vmm, m.vdd):
                break
            if m.has_edate:
                byear = year
                if m.vmm == 12 and m.emm == 1:
                    byear += 1
                elif m.vmm == 1 and m.emm == 12:
                    byear -= 1
                if not _valid_date(byear, m.emm, m.edd):
                    break
                vdate = date_new(year, m.vmm, m.vdd)
                booking = date_new(byear, m.emm, m.edd)
            else:
                vdate = date_new(year, m.vmm, m.vdd)
                booking = vdate
            last_key = date_key

        # --- accepted: the strings, exactly as flush_entry builds them ---
        rest_s = m.ttype + 4
        rest_e = le[0]
        if ttype is None or tt[0] != p[m.ttype] \
                or tt[1] != p[m.ttype + 1] \
                or tt[2] != p[m.ttype + 2] \
                or tt[3] != p[m.ttype + 3]:
            ttype = PyUnicode_Substring(text, m.ttype, rest_s)
            for i in range(4):
                tt[i] = p[m.ttype + i]

        # references: "cref//bank_ref", else the first 16 characters (the rest: supplementary)
        ref_end = -1
        r = rest_s
        while r + 1 < rest_e:
            if p[r] == 47 and p[r + 1] == 47:
                ref_end = r
                break
            r += 1
        cref_extra = None
        if ref_end >= 0:
            a, b = rest_s, ref_end
            acct_ref = _stripped(text, p, ref_end + 2, rest_e)
            if PyUnicode_GET_LENGTH(acct_ref) == 0:
                acct_ref = None
        else:
            a, b = rest_s, min(rest_s + 16, rest_e)
            acct_ref = None
            if rest_e > rest_s + 16:
                cref_extra = PyUnicode_Substring(text, rest_s + 16, rest_e)
        while a < b and Py_UNICODE_ISSPACE(<Py_UCS4>p[a]):
            a += 1
        while b > a and Py_UNICODE_ISSPACE(<Py_UCS4>p[b - 1]):
            b -= 1
        if b == a or _is_nonref(p, a, b):
            entry_ref = None
        else:
            entry_ref = PyUnicode_Substring(text, a, b)

        # supplementary details: the :61: field's continuation lines (and a long reference's tail);
        # lines 1..k-1 continue the :61:, lines k..nrec-1 are the :86: fields
        k = 1
        while k < nrec and lf[k] == 0:
            k += 1
        if k == 1 and cref_extra is None:
            supplementary = None
        else:
            extra = None if k == 1 else (
                PyUnicode_Substring(text, ls[1], le[1]) if k == 2 else _joined(text, ls, le, 1, k))
            supplementary = ((extra or "") + " " + (cref_extra or "")).strip() or None

        # :86: information: each field's lines joined by "\n" and stripped; the fields joined by "\n"
        if nfields == 0:
            info = None
        elif nfields == 1 and k == nrec - 1:  # the common case: one single-line :86:
            info = _stripped(text, p, ls[k], le[k])
        else:
            values = []
            i = k
            while i < nrec:
                first = i
                i += 1
                while i < nrec and lf[i] == lf[first]:
                    i += 1
                if i - first == 1:
                    values.append(_stripped(text, p, ls[first], le[first]))
                else:
                    values.append(_joined(text, ls, le, first, i).strip())
            info = values[0] if nfields == 1 else _NL.join(values)

        # every one of the 18 slots is set before the entry is appended (and can escape)
        entry = layout_new(&_ENTRY)
        # The entry refers to nothing but strs, ints, dates, bools, None, the empty tuple and the
        # shared empty Party, so it can never be part of a reference cycle: take it off the cyclic
        # GC's lists (as CPython does for tuples of atoms) instead of having every collection
        # traverse thousands of live entries. Freeing it is unchanged (subtype_dealloc).
        PyObject_GC_UnTrack(<PyObject *>entry)
        cvhub_set_slot(entry, _ENTRY.offsets[F_AMOUNT], PyLong_FromLongLong(<long long>m.amount))
        cvhub_set_slot(entry, _ENTRY.offsets[F_CCY], ccy)
        cvhub_set_slot(entry, _ENTRY.offsets[F_CD], _CRDT if m.credit else _DBIT)
        cvhub_set_slot(entry, _ENTRY.offsets[F_BOOKING], booking)
        cvhub_set_slot(entry, _ENTRY.offsets[F_VALUE], vdate)
        cvhub_set_slot(entry, _ENTRY.offsets[F_REVERSAL], True if m.reversal else False)
        cvhub_set_slot(entry, _ENTRY.offsets[F_STATUS], _BOOK)
        cvhub_set_slot(entry, _ENTRY.offsets[F_ENTRY_REF], entry_ref)
        cvhub_set_slot(entry, _ENTRY.offsets[F_ACCT_REF], acct_ref)
        cvhub_set_slot(entry, _ENTRY.offsets[F_E2E], None)
        cvhub_set_slot(entry, _ENTRY.offsets[F_INSTR], None)
        cvhub_set_slot(entry, _ENTRY.offsets[F_MANDATE], supplementary)
        cvhub_set_slot(entry, _ENTRY.offsets[F_REMIT], info)
        cvhub_set_slot(entry, _ENTRY.offsets[F_BTC], ttype)
        cvhub_set_slot(entry, _ENTRY.offsets[F_RTR], None)
        cvhub_set_slot(entry, _ENTRY.offsets[F_PARTY], party)
        cvhub_set_slot(entry, _ENTRY.offsets[F_LINE], PyLong_FromSsize_t(line_no))
        cvhub_set_slot(entry, _ENTRY.offsets[F_TXS], _NO_TXS)
        entries.append(entry)
        if m.credit:
            credit_n += 1
            credit_sum += <long long>m.amount
        else:
            debit_n += 1
            debit_sum += <long long>m.amount
        last_start = pos
        last_amount = <long long>m.amount
        last_credit = m.credit
        last_line = line_no
        line_no += nrec
        pos = q  # the line that ended the record: the next :61: (loop) or another tag (done)

    # The Python parser flushes a record only when the field after it (the one starting at `pos`)
    # is complete, so the last record of the run is only taken if nothing up to there could fail
    # first (see _field_completes). Without it, the record before it ends at the last record's
    # :61: field, whose lines (and the line after them) the run has already found clean.
    if entries and not _field_completes(p, pos, end):
        entries.pop()
        if last_credit:
            credit_n -= 1
            credit_sum -= last_amount
        else:
            debit_n -= 1
            debit_sum -= last_amount
        pos = last_start
        line_no = last_line
    if not entries:
        return None
    cur.count += line_no - lineno - 1  # the first :61: line was counted by next()
    cur.pos = pos
    cur.last = -1                      # a second entries() call for the same line takes nothing
    return (entries, line_no - lineno, credit_n, credit_sum, debit_n, debit_sum)


cdef inline bint _is_nonref(const char_t *p, Py_ssize_t a, Py_ssize_t b) noexcept:
    """[a, b) == "NONREF"."""
    cdef Py_ssize_t i
    if b - a != 6:
        return False
    cdef const char *nonref = b"NONREF"
    for i in range(6):
        if p[a + i] != <unsigned int>nonref[i]:
            return False
    return True
