# cython: language_level=3
"""The compiled fast path of ``mappings.camt._entry``: one camt ``<Ntry>`` -> ``StatementEntry``.

``EntryMapper(namespace, max_text, dates, no_party).entry(ntry)`` walks the entry's libxml2 node
tree directly (``_Element._c_node``, lxml's public C API) instead of creating an lxml proxy per
child, and builds the ``StatementEntry`` / ``Party`` slot by slot (``_fastobj.pxd``). It handles a
strict subset, the common shape, and for anything else returns None so that ``camt._entry`` - the
reference - maps the entry (and raises every error). For an entry it accepts, the result is equal
to what ``camt._entry`` returns (same field values, types and line), and the per-file date cache
``dates`` evolves exactly as the Python path would have left it.

Accepted (everything below mirrors ``camt._entry`` / ``_tx_details`` / ``_counterparty`` rule by
rule, including "last occurrence wins" for repeated children and tag matching by namespace):
  * the nodes the walk looks into contain only elements and text nodes (pretty-printing
    whitespace is fine); a read leaf's text is absent or one text node (lxml's ``.text``);
  * ``Ntry/Amt``: a ``Ccy`` of ``CURRENCY_EXPONENT`` and plain ``digits[.digits]`` text (at most
    15 integer digits, at most the currency's decimals) - ``camt._fast_minor``'s common case;
  * ``CdtDbtInd`` CRDT/DBIT, ``RvslInd``, ``Sts`` (v2 text or v8 ``<Cd>``), ``NtryRef``,
    ``AcctSvcrRef``, ``AddtlNtryInf``, ``BookgDt``/``ValDt`` (first non-empty child, cached per
    file by its first 10 characters as ``_Ctx.date_of`` does; an unparseable date refuses);
  * ``BkTxCd`` as ``Domn`` (2 children, ``Fmly`` with 2, all three codes non-empty) or
    ``Prtry/Cd`` (or nothing);
  * zero or one ``NtryDtls/TxDtls`` with ``Refs``, ``Amt`` (plain, as above), ``CdtDbtInd``,
    ``RltdPties``/``RltdAgts`` (name v2 ``Nm`` / v8 ``Pty/Nm``; account ``IBAN`` / ``Othr/Id``;
    agent ``BICFI``/``BIC``/``Othr/Id``/``ClrSysMmbId/MmbId``), ``RmtInf`` (``Ustrd`` parts or
    ``Strd/CdtrRefInf/Ref``), ``RtrInf/Rsn``.
Refused (the Python code decides): comments, PIs, entity references or adjacent text nodes where
the walk looks; any text whose UTF-8 length exceeds ``max_text`` (Python raises the limit error
when its character length does); amounts in any other form (signs, exponents, Unicode digits,
unknown or missing currency); missing amount; any other CdtDbtInd; an ``AmtDtls`` before any
``TxDtls/Amt``; two or more ``TxDtls``; a ``Domn`` bank code of another shape; more than 8
``Ustrd`` lines. Nothing here raises a mapping error.

The module refuses to import (ImportError -> ``mappings.accel.load`` returns None) when the
running lxml/libxml2 is not the version it was compiled against (it reads their structs) or when
``StatementEntry`` / ``Party`` no longer have the field layout it fills.
"""

from cpython.unicode cimport Py_UNICODE_ISSPACE
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.stdint cimport int64_t
from libc.string cimport memcmp, memcpy, strcmp, strlen

cimport lxml.includes.etreepublic as cetree
from lxml.includes.tree cimport XML_ELEMENT_NODE, XML_TEXT_NODE, xmlAttr, xmlNode, xmlNs

from mappings._fastobj cimport SlotLayout, cvhub_set_slot, layout_init, layout_new


from lxml import etree

from ledger.canonical import Party, StatementEntry
from ledger.lexical import iso_date as _iso_date
from ledger.money import CURRENCY_EXPONENT

cdef extern from "lxml-version.h":
    const char *LXML_VERSION_STRING

cdef extern from "libxml/xmlversion.h":
    int LIBXML_VERSION

cdef extern from "Python.h":
    # Redeclared for const pointers. NULL (UnicodeDecodeError) only for invalid UTF-8, which
    # libxml2 never stores; Cython raises it and ``EntryMapper.entry`` turns it into a refusal.
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)


def _check_versions():
    compiled_lxml = LXML_VERSION_STRING.decode("ascii")
    compiled_libxml = (LIBXML_VERSION // 10000, LIBXML_VERSION // 100 % 100, LIBXML_VERSION % 100)
    if etree.__version__ != compiled_lxml or tuple(etree.LIBXML_VERSION) != compiled_libxml:
        raise ImportError(
            f"mappings._camt_accel was compiled against lxml {compiled_lxml} / libxml2 {compiled_libxml}, "
            f"running lxml {etree.__version__} / libxml2 {etree.LIBXML_VERSION}: rebuild it")


# First the version check (ImportError), then lxml's C-API import, which on another lxml could
# fail with TypeError ("wrong signature"). Cython's check of lxml's extension type sizes runs
# even earlier, in the module init, and raises ValueError: mappings.accel.load must treat that as
# "not available" too.
_check_versions()
cetree.import_lxml__etree()

ENTRY_FIELDS = ("amount_minor", "currency", "credit_debit", "booking_date", "value_date", "reversal",
                "status", "entry_ref", "account_servicer_ref", "end_to_end_id", "instruction_id",
                "mandate_or_serial", "remittance_info", "bank_tx_code", "return_reason", "counterparty",
                "line", "transactions")
PARTY_FIELDS = ("name", "account", "agent", "uscc")

cdef SlotLayout _ENTRY
cdef SlotLayout _PARTY
try:
    layout_init(&_ENTRY, StatementEntry, ENTRY_FIELDS)
    layout_init(&_PARTY, Party, PARTY_FIELDS)
except ValueError as e:
    raise ImportError(f"mappings._camt_accel: {e}; update the accelerator") from e

# Accepted / refused entries since import (the differential tests check the fast path is used).
cdef Py_ssize_t _accepted = 0
cdef Py_ssize_t _refused = 0


def stats():
    """(accepted, refused): entries this module mapped / handed back to Python since import."""
    return _accepted, _refused


# Constant strings for the common values (no new str per entry; results only have to be ==).
cdef str _CRDT = "CRDT"
cdef str _DBIT = "DBIT"
cdef str _BOOK = "BOOK"
cdef tuple _EMPTY = ()

cdef enum:
    MAX_PARTS = 8          # Ustrd lines kept per RmtInf; more -> refuse
    MAX_DATE_CACHE = 4096  # as _Ctx.date_of: it caches while len(dates) < 4096

# --- pure C helpers over the libxml2 tree: no Python objects, -1 = refuse ---------------------


cdef struct Span:
    # Stripped text: a borrowed pointer into a text node of the entry being mapped (alive for the
    # whole call: nothing runs that could change the tree). n == 0 means None (empty -> None).
    const unsigned char *p
    Py_ssize_t n


cdef struct Walk:
    xmlNs *ns_ptr            # the Ntry's own namespace struct: pointer-equal -> same namespace
    const char *ns           # the document's namespace href (UTF-8)
    Py_ssize_t max_text


cdef inline bint _same_ns(const Walk *w, const xmlNode *n) noexcept:
    # lxml's Clark tag "{ns}Name" equality = same namespace href (and same local name).
    if n.ns == w.ns_ptr:
        return n.ns != NULL
    return n.ns != NULL and n.ns.href != NULL and strcmp(<const char *>n.ns.href, w.ns) == 0


cdef inline bint _is(const Walk *w, const xmlNode *n, const char *name) noexcept:
    """``n.tag == q + name`` for an element node."""
    return (n.type == XML_ELEMENT_NODE and strcmp(<const char *>n.name, name) == 0
            and _same_ns(w, n))


cdef inline int _first_elem(const xmlNode *el, xmlNode **out) noexcept:
    """``el[0]`` if ``len(el)``: 1 with *out set, 0 without element children, -1 if a node other
    than an element or a text node comes first (lxml would count a comment/PI/entity ref)."""
    cdef xmlNode *c = el.children
    while c != NULL:
        if c.type == XML_ELEMENT_NODE:
            out[0] = c
            return 1
        if c.type != XML_TEXT_NODE:
            return -1
        c = c.next
    return 0


cdef int _elems(const xmlNode *el, xmlNode **out, int cap) noexcept:
    """Up to ``cap`` element children into ``out``; returns their count (cap + 1 = more), -1 if
    there is any child that is neither an element nor a text node."""
    cdef xmlNode *c = el.children
    cdef int n = 0
    while c != NULL:
        if c.type == XML_ELEMENT_NODE:
            if n == cap:
                return cap + 1
            out[n] = c
            n += 1
        elif c.type != XML_TEXT_NODE:
            return -1
        c = c.next
    return n


cdef xmlNode *_find(const Walk *w, const xmlNode *el, const char **path, int depth) noexcept:
    """lxml ``el.find("q:A/q:B...")``: the first match in document order of the nested child
    generators (so the first A without a B is skipped for the next A). NULL = not found. Only
    elements can match, as in lxml, so other node types need no refusal here."""
    cdef xmlNode *c = el.children
    cdef xmlNode *r
    while c != NULL:
        if _is(w, c, path[0]):
            if depth == 1:
                return c
            r = _find(w, c, path + 1, depth - 1)
            if r != NULL:
                return r
        c = c.next
    return NULL


cdef inline int _u8_len(unsigned char c) noexcept:
    if c < 0x80:
        return 1
    if 0xC2 <= c <= 0xDF:
        return 2
    if 0xE0 <= c <= 0xEF:
        return 3
    if 0xF0 <= c <= 0xF4:
        return 4
    return 0


cdef unsigned int _u8_char(const unsigned char *p, int k) noexcept:
    """The code point of the k-byte UTF-8 sequence at p; 0xFFFFFFFF if malformed. (Plain
    unsigned int: Cython treats Py_UCS4 arithmetic as characters.)"""
    cdef unsigned int cp = p[0] & (0x7F >> k)
    cdef int i
    for i in range(1, k):
        if (p[i] & 0xC0) != 0x80:
            return 0xFFFFFFFF
        cp = (cp << 6) | (p[i] & 0x3F)
    return cp


cdef int _strip(const unsigned char *p, Py_ssize_t n, Py_ssize_t *a, Py_ssize_t *b) noexcept:
    """The byte range [a, b) of ``p[:n].decode().strip()``: Python's str.strip() removes Unicode
    whitespace (U+3000, U+00A0, ...), so the end characters are decoded and tested with
    Py_UNICODE_ISSPACE, the predicate str.strip() uses. -1 on malformed UTF-8 at an end."""
    cdef Py_ssize_t i = 0, j = n, s
    cdef int k
    cdef unsigned int cp
    while i < j:
        if p[i] < 0x80:
            if not Py_UNICODE_ISSPACE(p[i]):
                break
            i += 1
        else:
            k = _u8_len(p[i])
            if k < 2 or i + k > j:
                return -1
            cp = _u8_char(p + i, k)
            if cp == 0xFFFFFFFF:
                return -1
            if not Py_UNICODE_ISSPACE(<Py_UCS4>cp):
                break
            i += k
    while j > i:
        if p[j - 1] < 0x80:
            if not Py_UNICODE_ISSPACE(p[j - 1]):
                break
            j -= 1
        else:
            s = j - 1  # back to the lead byte of the last character
            while s > i and (p[s] & 0xC0) == 0x80 and j - s < 4:
                s -= 1
            k = <int>(j - s)
            if _u8_len(p[s]) != k:
                return -1
            cp = _u8_char(p + s, k)
            if cp == 0xFFFFFFFF:
                return -1
            if not Py_UNICODE_ISSPACE(<Py_UCS4>cp):
                break
            j = s
    a[0] = i
    b[0] = j
    return 0


cdef int _raw(const xmlNode *el, const unsigned char **p, Py_ssize_t *n) noexcept:
    """lxml's ``el.text`` (the text before the first child element): 1 with p/n set, 0 for
    None; -1 when it is not a single plain text node (lxml would join several nodes, or stop at
    an entity reference: rare, so Python handles it)."""
    cdef xmlNode *c = el.children
    if c == NULL or c.type == XML_ELEMENT_NODE:
        return 0
    if c.type != XML_TEXT_NODE or c.content == NULL:
        return -1
    if c.next != NULL and c.next.type != XML_ELEMENT_NODE:
        return -1
    p[0] = <const unsigned char *>c.content
    n[0] = <Py_ssize_t>strlen(<const char *>c.content)
    return 1


cdef int _text(const Walk *w, const xmlNode *el, Span *out) noexcept:
    """``_Ctx.text(el)``: 1 with *out = the stripped text, 0 for None (no text, or only
    whitespace), -1 to refuse. Python raises the limit error when len(text) > max_text in
    characters; UTF-8 bytes >= characters, so more bytes than max_text refuses (Python decides)."""
    cdef const unsigned char *p = NULL
    cdef Py_ssize_t n = 0, a = 0, b = 0
    cdef int r = _raw(el, &p, &n)
    out.p = NULL
    out.n = 0
    if r <= 0:
        return r
    if n > w.max_text or _strip(p, n, &a, &b) < 0:
        return -1
    out.p = p + a
    out.n = b - a
    return 1 if b > a else 0


cdef int _path_text(const Walk *w, const xmlNode *el, const char **path, int depth, Span *out) noexcept:
    """``_Ctx.child_text(el, path)``."""
    cdef xmlNode *found = _find(w, el, path, depth)
    if found == NULL:
        out.n = 0
        return 0
    return _text(w, found, out)


cdef inline bint _span_is(const Span *s, const char *lit, Py_ssize_t n) noexcept:
    return s.n == n and memcmp(s.p, lit, n) == 0


cdef int _plain_amount(const unsigned char *p, Py_ssize_t n, int exp, int64_t *out) noexcept:
    """``_fast_minor`` on already stripped text: ASCII ``digits[.digits]`` with at most ``exp``
    decimals -> exact minor units. -1 for anything else (Python decides; its error, if any).
    At most 15 integer digits so that whole * 10**exp fits in 64 bits (exp <= 3)."""
    cdef Py_ssize_t i = 0, nf = 0
    cdef int64_t whole = 0, frac = 0
    cdef int k
    while i < n and 48 <= p[i] <= 57:
        if i == 15:  # checked before accumulating: no 64-bit overflow
            return -1
        whole = whole * 10 + (p[i] - 48)
        i += 1
    if i == 0:
        return -1
    if i < n:
        if p[i] != 46:  # "."
            return -1
        i += 1
        while i < n:
            if not (48 <= p[i] <= 57):
                return -1
            frac = frac * 10 + (p[i] - 48)
            nf += 1
            if nf > exp:
                return -1
            i += 1
    for k in range(exp):
        whole *= 10
    for k in range(exp - <int>nf):
        frac *= 10
    out[0] = whole + frac
    return 0


cdef struct Tx:
    # What camt._tx_details returns for the single-TxDtls case (the parts an entry uses).
    Span e2e
    Span instr
    Span acct_ref
    Span rtr
    int nparts               # -1: no RmtInf seen (remit None); else the Ustrd/Ref parts
    Span parts[MAX_PARTS]
    xmlNode *parties[6]      # Dbtr, DbtrAcct, Cdtr, CdtrAcct, DbtrAgt, CdtrAgt


# C string arrays for the find paths (module-level constants).
cdef const char *P_PRTRY_CD[2]
P_PRTRY_CD[:] = [b"Prtry", b"Cd"]
cdef const char *P_RSN_CD[2]
P_RSN_CD[:] = [b"Rsn", b"Cd"]
cdef const char *P_RSN_PRTRY[2]
P_RSN_PRTRY[:] = [b"Rsn", b"Prtry"]
cdef const char *P_STRD_REF[3]
P_STRD_REF[:] = [b"Strd", b"CdtrRefInf", b"Ref"]
cdef const char *P_NM[1]
P_NM[:] = [b"Nm"]
cdef const char *P_BICFI[1]
P_BICFI[:] = [b"BICFI"]
cdef const char *P_BIC[1]
P_BIC[:] = [b"BIC"]
cdef const char *P_MMBID[2]
P_MMBID[:] = [b"ClrSysMmbId", b"MmbId"]
cdef const char *P_OTHR_ID[2]
P_OTHR_ID[:] = [b"Othr", b"Id"]

cdef enum:
    # Ntry children camt._entry acts on; everything else (K_OTHER) it ignores.
    K_OTHER, K_AMT, K_CDI, K_RVSL, K_STS, K_BOOKG, K_VAL, K_NREF, K_ASREF, K_BTC, K_DTLS, K_ADDTL


cdef int _ntry_kind(const char *s) noexcept:
    cdef char c = s[0]
    if c == b'A':
        if strcmp(s, b"Amt") == 0:
            return K_AMT
        if strcmp(s, b"AcctSvcrRef") == 0:
            return K_ASREF
        if strcmp(s, b"AddtlNtryInf") == 0:
            return K_ADDTL
    elif c == b'B':
        if strcmp(s, b"BookgDt") == 0:
            return K_BOOKG
        if strcmp(s, b"BkTxCd") == 0:
            return K_BTC
    elif c == b'C':
        if strcmp(s, b"CdtDbtInd") == 0:
            return K_CDI
    elif c == b'N':
        if strcmp(s, b"NtryRef") == 0:
            return K_NREF
        if strcmp(s, b"NtryDtls") == 0:
            return K_DTLS
    elif c == b'R':
        if strcmp(s, b"RvslInd") == 0:
            return K_RVSL
    elif c == b'S':
        if strcmp(s, b"Sts") == 0:
            return K_STS
    elif c == b'V':
        if strcmp(s, b"ValDt") == 0:
            return K_VAL
    return K_OTHER


cdef int _party_slot(const char *s) noexcept:
    """Index in Tx.parties of a RltdPties/RltdAgts child (camt._NAMES kinds _DBTR.._CDTR_AGT)."""
    if s[0] == b'D':
        if strcmp(s, b"Dbtr") == 0:
            return 0
        if strcmp(s, b"DbtrAcct") == 0:
            return 1
        if strcmp(s, b"DbtrAgt") == 0:
            return 4
    elif s[0] == b'C':
        if strcmp(s, b"Cdtr") == 0:
            return 2
        if strcmp(s, b"CdtrAcct") == 0:
            return 3
        if strcmp(s, b"CdtrAgt") == 0:
            return 5
    return -1


cdef int _party_name(const Walk *w, xmlNode *el, Span *out) noexcept:
    """camt._party_name: v2 ``Dbtr/Nm``, v8 ``Dbtr/Pty/Nm`` (by position first)."""
    cdef xmlNode *first
    cdef int r
    out.n = 0
    if el == NULL:
        return 0
    r = _first_elem(el, &first)
    if r <= 0:
        return r
    if _is(w, first, b"Pty"):
        el = first
        r = _first_elem(el, &first)
        if r <= 0:
            return r
    if _is(w, first, b"Nm"):
        return _text(w, first, out)
    return _path_text(w, el, P_NM, 1, out)


cdef int _account(const Walk *w, xmlNode *el, Span *out) noexcept:
    """camt._fast_account: ``Acct/Id/IBAN`` or ``Acct/Id/Othr/Id``, positionally."""
    cdef xmlNode *ident
    cdef xmlNode *choice
    cdef xmlNode *inner
    cdef int r
    out.n = 0
    if el == NULL:
        return 0
    r = _first_elem(el, &ident)
    if r <= 0:
        return r
    r = _first_elem(ident, &choice)
    if r <= 0:
        return r
    r = _first_elem(choice, &inner)
    if r < 0:
        return -1
    return _text(w, inner if r == 1 else choice, out)


cdef int _agent(const Walk *w, xmlNode *el, Span *out) noexcept:
    """camt._agent with tags: ``FinInstnId``'s first child BICFI/BIC, Othr/<first>, else the
    searches BICFI, BIC, ClrSysMmbId/MmbId, Othr/Id in that order (evaluated lazily, like ``or``)."""
    cdef xmlNode *fin
    cdef xmlNode *first
    cdef xmlNode *inner
    cdef int r
    out.n = 0
    if el == NULL:
        return 0
    r = _first_elem(el, &fin)
    if r <= 0:
        return r
    r = _first_elem(fin, &first)
    if r <= 0:
        return r
    if _is(w, first, b"BICFI") or _is(w, first, b"BIC"):
        return _text(w, first, out)
    if _is(w, first, b"Othr"):
        r = _first_elem(first, &inner)
        if r < 0:
            return -1
        if r == 1:
            return _text(w, inner, out)
    r = _path_text(w, fin, P_BICFI, 1, out)
    if r == 0:
        r = _path_text(w, fin, P_BIC, 1, out)
    if r == 0:
        r = _path_text(w, fin, P_MMBID, 2, out)
    if r == 0:
        r = _path_text(w, fin, P_OTHR_ID, 2, out)
    return r


# --- building the Python objects ---------------------------------------------------------------

cdef inline object _str(const Span *s):
    """The span as str, or None for an empty one. A decoding failure (never for libxml2 text)
    propagates as UnicodeDecodeError, which ``EntryMapper.entry`` turns into a refusal."""
    if s.n == 0:
        return None
    return PyUnicode_DecodeUTF8(<const char *>s.p, s.n, NULL)


cdef object _party(const Span *name, const Span *account, const Span *agent):
    """make_party(name, account, agent): a Party with uscc None, every slot filled."""
    n, a, g = _str(name), _str(account), _str(agent)  # first: nothing fails once p exists
    p = layout_new(&_PARTY)
    cvhub_set_slot(p, _PARTY.offsets[0], n)
    cvhub_set_slot(p, _PARTY.offsets[1], a)
    cvhub_set_slot(p, _PARTY.offsets[2], g)
    cvhub_set_slot(p, _PARTY.offsets[3], None)
    return p


cdef class EntryMapper:
    """Maps camt ``<Ntry>`` elements of one document (see the module docstring)."""

    cdef bytes _ns_bytes
    cdef Walk _w
    cdef dict _dates
    cdef object _no_party
    # Currency cache: the last Ccy attribute bytes -> its str and exponent.
    cdef char _ccy_buf[16]
    cdef Py_ssize_t _ccy_len
    cdef object _ccy_str
    cdef int _ccy_exp
    # Date cache: the last 10-character date key -> its date (mirrors a `dates` entry; see _day).
    cdef char _day_buf[10]
    cdef Py_ssize_t _day_len
    cdef object _day_val

    def __init__(self, str namespace not None, max_text, dict dates not None, no_party):
        ns_bytes = namespace.encode("utf-8")
        if b"\0" in ns_bytes:  # strcmp would stop at the NUL; no lxml tag can contain one
            raise ValueError("namespace contains a NUL character")
        # Any int works in Python; clamped, the comparisons with C lengths give the same answers.
        # Computed before any field is set: a failing __init__ leaves no half-initialised mapper.
        cdef Py_ssize_t limit = max(-1, min(int(max_text), PY_SSIZE_T_MAX))
        self._ns_bytes = ns_bytes
        self._w.ns = self._ns_bytes
        self._w.ns_ptr = NULL
        self._w.max_text = limit
        self._dates = dates
        self._no_party = no_party
        self._ccy_len = -1
        self._ccy_str = None
        self._ccy_exp = -1
        self._day_len = -1
        self._day_val = None

    def entry(self, ntry):
        """The StatementEntry for ``ntry`` (an lxml element), or None: map it in Python."""
        global _accepted, _refused
        cdef xmlNode *node
        result = None
        # self._w.ns is NULL (and _dates None) until __init__ ran (EntryMapper.__new__): refuse.
        if self._w.ns != NULL and isinstance(ntry, cetree._Element):
            node = (<cetree._Element>ntry)._c_node
            if node != NULL and node.type == XML_ELEMENT_NODE and node.ns != NULL \
                    and node.ns.href != NULL and strcmp(<const char *>node.ns.href, self._w.ns) == 0:
                self._w.ns_ptr = node.ns
                try:
                    result = self._map(node, ntry)
                except UnicodeDecodeError:
                    result = None
                self._w.ns_ptr = NULL
        if result is None:
            _refused += 1
        else:
            _accepted += 1
        return result

    cdef int _ccy(self, const xmlNode *el) except -2:
        """Exponent of ``el``'s Ccy attribute (and self._ccy_str = the attribute), -1 to refuse
        (missing, empty, unknown: Python raises its error)."""
        cdef xmlAttr *attr = el.properties
        cdef xmlNode *t
        cdef Py_ssize_t n
        while attr != NULL:
            if attr.ns == NULL and strcmp(<const char *>attr.name, b"Ccy") == 0:
                break
            attr = attr.next
        if attr == NULL:
            return -1
        t = attr.children
        if t == NULL or t.type != XML_TEXT_NODE or t.next != NULL or t.content == NULL:
            return -1
        n = <Py_ssize_t>strlen(<const char *>t.content)
        if n == 0 or n > 15:
            return -1
        if n == self._ccy_len and memcmp(self._ccy_buf, t.content, n) == 0:
            return self._ccy_exp
        s = PyUnicode_DecodeUTF8(<const char *>t.content, n, NULL)
        exp = CURRENCY_EXPONENT.get(s)
        if type(exp) is not int or not 0 <= exp <= 3:
            return -1
        memcpy(self._ccy_buf, t.content, n)
        self._ccy_len = n
        self._ccy_str = s
        self._ccy_exp = exp
        return exp

    cdef int _amount(self, const xmlNode *el, int64_t *out) except -2:
        """A plain amount (``_fast_minor``'s case, which ``to_minor`` also accepts): 0 with *out
        and self._ccy_str set, -1 to refuse."""
        cdef const unsigned char *p = NULL
        cdef Py_ssize_t n = 0, a = 0, b = 0
        cdef int exp = self._ccy(el)
        if exp < 0 or _raw(el, &p, &n) != 1 or _strip(p, n, &a, &b) < 0:
            return -1
        return _plain_amount(p + a, b - a, exp, out)

    cdef object _day(self, const xmlNode *el):
        """The date of a ``DateAndDateTimeChoice`` as camt._entry + _Ctx.date_of compute it:
        the first child with non-empty text, its first 10 characters looked up in (and on a miss
        added to, while smaller than 4096) the per-file ``dates``. Returns the date, None (no
        date), or False to refuse (an over-long or unparseable text: Python raises)."""
        cdef xmlNode *c = el.children
        cdef Span s
        cdef int r
        cdef Py_ssize_t k, i
        while c != NULL:
            if c.type == XML_TEXT_NODE:
                c = c.next
                continue
            if c.type != XML_ELEMENT_NODE:
                return False
            r = _text(&self._w, c, &s)
            if r < 0:
                return False
            if r == 0:
                c = c.next
                continue
            k = s.n if s.n < 10 else 10
            for i in range(k):  # t[:10] is 10 characters: only ASCII keeps it 10 bytes
                if s.p[i] >= 0x80:
                    return False
            # The cache only ever holds a pair that `dates` held (or would have held) when it was
            # stored; `dates` never changes a value, and iso_date is deterministic.
            if k == self._day_len and memcmp(self._day_buf, s.p, k) == 0:
                return self._day_val
            key = PyUnicode_DecodeUTF8(<const char *>s.p, k, NULL)
            value = self._dates.get(key)
            if value is None:
                try:
                    value = _iso_date(key)  # the reference's own check: YYYY-MM-DD exactly
                except ValueError:
                    return False  # Python raises invalid_date
                if len(self._dates) < MAX_DATE_CACHE:
                    self._dates[key] = value
            memcpy(self._day_buf, s.p, k)
            self._day_len = k
            self._day_val = value
            return value
        return None

    cdef int _tx(self, const xmlNode *tx, Tx *t) except -2:
        """camt._tx_details for one TxDtls, validating everything Python would raise on (TxDtls/Amt,
        CdtDbtInd, text limits) even where the single-TxDtls entry does not use the value."""
        cdef Walk *w = &self._w
        cdef xmlNode *c = tx.children
        cdef xmlNode *r
        cdef xmlNode *u
        cdef Span s
        cdef int k, rc
        cdef bint amount_seen = False
        cdef int64_t ignored
        cdef const char *name
        while c != NULL:
            if c.type != XML_ELEMENT_NODE:
                if c.type != XML_TEXT_NODE:
                    return -1
                c = c.next
                continue
            if not _same_ns(w, c):
                c = c.next
                continue
            name = <const char *>c.name
            if strcmp(name, b"Refs") == 0:
                r = c.children
                while r != NULL:
                    if r.type == XML_ELEMENT_NODE:
                        if _same_ns(w, r):
                            k = -1
                            if strcmp(<const char *>r.name, b"EndToEndId") == 0:
                                k = 0
                            elif strcmp(<const char *>r.name, b"InstrId") == 0:
                                k = 1
                            elif strcmp(<const char *>r.name, b"PmtInfId") == 0:
                                k = 2
                            elif strcmp(<const char *>r.name, b"AcctSvcrRef") == 0:
                                k = 3
                            if k >= 0:
                                if _text(w, r, &s) < 0:
                                    return -1
                                if k == 0:
                                    t.e2e = s
                                elif k == 1:
                                    t.instr = s
                                elif k == 3:
                                    t.acct_ref = s
                                # k == 2 (PmtInfId): only checked; a single TxDtls entry drops it
                    elif r.type != XML_TEXT_NODE:
                        return -1
                    r = r.next
            elif strcmp(name, b"RltdPties") == 0 or strcmp(name, b"RltdAgts") == 0:
                # camt maps any of the six party kinds in either container (by tag, not container)
                r = c.children
                while r != NULL:
                    if r.type == XML_ELEMENT_NODE:
                        if _same_ns(w, r):
                            k = _party_slot(<const char *>r.name)
                            if k >= 0:
                                t.parties[k] = r
                    elif r.type != XML_TEXT_NODE:
                        return -1
                    r = r.next
            elif strcmp(name, b"RmtInf") == 0:
                t.nparts = 0
                u = c.children
                while u != NULL:
                    if u.type == XML_ELEMENT_NODE:
                        if _is(w, u, b"Ustrd"):
                            rc = _text(w, u, &s)
                            if rc < 0:
                                return -1
                            if rc == 1:
                                if t.nparts == MAX_PARTS:
                                    return -1
                                t.parts[t.nparts] = s
                                t.nparts += 1
                    elif u.type != XML_TEXT_NODE:
                        return -1
                    u = u.next
                if t.nparts == 0:
                    rc = _path_text(w, c, P_STRD_REF, 3, &s)
                    if rc < 0:
                        return -1
                    if rc == 1:
                        t.parts[0] = s
                        t.nparts = 1
            elif strcmp(name, b"Amt") == 0:
                # c.amount(child): Ccy required and known, text a plain decimal -> to_minor accepts it
                if self._amount(c, &ignored) < 0:
                    return -1
                amount_seen = True
            elif strcmp(name, b"AmtDtls") == 0:
                if not amount_seen:  # Python would read AmtDtls/TxAmt/Amt: not in the subset
                    return -1
            elif strcmp(name, b"CdtDbtInd") == 0:
                if _text(w, c, &s) != 1 or not (_span_is(&s, b"CRDT", 4) or _span_is(&s, b"DBIT", 4)):
                    return -1
            elif strcmp(name, b"RtrInf") == 0:
                rc = _path_text(w, c, P_RSN_CD, 2, &s)
                if rc == 0:
                    rc = _path_text(w, c, P_RSN_PRTRY, 2, &s)
                if rc < 0:
                    return -1
                t.rtr = s
            c = c.next
        return 0

    cdef object _map(self, xmlNode *ntry, object ntry_obj):
        cdef Walk *w = &self._w
        cdef xmlNode *c = ntry.children
        cdef xmlNode *f
        cdef xmlNode *kids[3]
        cdef xmlNode *fk[3]
        cdef xmlNode *x
        cdef Py_ssize_t n, i
        cdef int r, kind, ntx = 0
        cdef int64_t amount = 0
        cdef bint have_amount = False, reversal = False
        cdef Span s, cd, entry_ref, acct_ref, addtl, status, btc1, btc2, btc3
        cdef Span pname, pacct, pagent
        cdef int btc_kind = 0  # 0 None, 1 btc1 (Prtry/Cd), 3 "btc1/btc2/btc3" (Domn)
        cdef bint status_set = False
        cdef Tx t
        cdef unsigned char buf[256]
        cdef xmlNode **sides
        ccy = None
        booking = None
        value = None
        cd.p = entry_ref.p = acct_ref.p = addtl.p = status.p = NULL
        cd.n = entry_ref.n = acct_ref.n = addtl.n = status.n = 0
        t.e2e.p = t.instr.p = t.acct_ref.p = t.rtr.p = NULL
        t.e2e.n = t.instr.n = t.acct_ref.n = t.rtr.n = 0
        t.nparts = -1
        for i in range(6):
            t.parties[i] = NULL
        while c != NULL:
            if c.type != XML_ELEMENT_NODE:
                if c.type != XML_TEXT_NODE:
                    return None
                c = c.next
                continue
            if not _same_ns(w, c):
                c = c.next
                continue
            kind = _ntry_kind(<const char *>c.name)
            if kind == K_AMT:
                # the inlined _fast_minor: Ccy known, plain text; else c.amount decides -> refuse
                if self._amount(c, &amount) < 0:
                    return None
                ccy = self._ccy_str
                have_amount = True
            elif kind == K_CDI or kind == K_ASREF or kind == K_NREF or kind == K_ADDTL \
                    or kind == K_RVSL:
                if _text(w, c, &s) < 0:
                    return None
                if kind == K_CDI:
                    cd = s
                elif kind == K_ASREF:
                    acct_ref = s
                elif kind == K_NREF:
                    entry_ref = s
                elif kind == K_ADDTL:
                    addtl = s
                else:
                    reversal = _span_is(&s, b"true", 4) or _span_is(&s, b"1", 1)
            elif kind == K_BOOKG or kind == K_VAL:
                day = self._day(c)
                if day is False:
                    return None
                if kind == K_BOOKG:
                    booking = day
                else:
                    value = day
            elif kind == K_STS:
                # c.text(child) or (c.text(child[0]) if len(child) else None) or "BOOK"
                r = _text(w, c, &s)
                if r < 0:
                    return None
                if r == 0:
                    r = _first_elem(c, &f)
                    if r < 0:
                        return None
                    if r == 1:
                        r = _text(w, f, &s)
                        if r < 0:
                            return None
                status_set = r == 1
                status = s
            elif kind == K_BTC:
                r = _first_elem(c, &f)
                if r < 0:
                    return None
                btc_kind = 0
                if r == 1:
                    if _is(w, f, b"Domn"):
                        # only the positional fast case: Domn = (Cd, Fmly(Cd, SubFmlyCd))
                        if _elems(f, kids, 2) != 2 or _elems(kids[1], fk, 2) != 2:
                            return None
                        if _text(w, kids[0], &btc1) != 1 or _text(w, fk[0], &btc2) != 1 \
                                or _text(w, fk[1], &btc3) != 1:
                            return None  # f"{None}/..." is legal Python but not worth a case
                        btc_kind = 3
                    else:
                        r = _path_text(w, c, P_PRTRY_CD, 2, &btc1)
                        if r < 0:
                            return None
                        btc_kind = r
            elif kind == K_DTLS:
                x = c.children
                while x != NULL:
                    if x.type == XML_ELEMENT_NODE:
                        if _is(w, x, b"TxDtls"):
                            ntx += 1
                            if ntx > 1:  # a batch booking: TransactionDetail tuples, in Python
                                return None
                            if self._tx(x, &t) < 0:
                                return None
                    elif x.type != XML_TEXT_NODE:
                        return None
                    x = x.next
            c = c.next
        if not have_amount:
            return None
        if _span_is(&cd, b"CRDT", 4):
            direction = _CRDT
            sides = t.parties  # money came in: the debtor is the other side
        elif _span_is(&cd, b"DBIT", 4):
            direction = _DBIT
            sides = t.parties + 2
        else:
            return None
        if ntx == 1:
            # camt._counterparty: the other side's name and account (sides[0], sides[1]) and
            # agent (DbtrAgt for a credit, CdtrAgt for a debit)
            x = t.parties[4] if direction is _CRDT else t.parties[5]
            if sides[0] == NULL and sides[1] == NULL and x == NULL:
                party = self._no_party
            else:
                if _party_name(w, sides[0], &pname) < 0 or _account(w, sides[1], &pacct) < 0 \
                        or _agent(w, x, &pagent) < 0:
                    return None
                party = _party(&pname, &pacct, &pagent)
            if t.nparts > 1:
                remit = " ".join([_str(&t.parts[i]) for i in range(t.nparts)])
            elif t.nparts == 1:
                remit = _str(&t.parts[0])
            else:
                remit = None
            if remit is None:
                remit = _str(&addtl)
            ref = _str(&acct_ref) if acct_ref.n else _str(&t.acct_ref)
            e2e = _str(&t.e2e)
            instr = _str(&t.instr)
            rtr = _str(&t.rtr)
        else:
            party = self._no_party
            remit = _str(&addtl)
            ref = _str(&acct_ref)
            e2e = instr = rtr = None
        if btc_kind == 3:
            n = btc1.n + btc2.n + btc3.n + 2
            if n > 256:
                return None
            memcpy(buf, btc1.p, btc1.n)
            buf[btc1.n] = 47  # "/"
            memcpy(buf + btc1.n + 1, btc2.p, btc2.n)
            buf[btc1.n + 1 + btc2.n] = 47
            memcpy(buf + btc1.n + 2 + btc2.n, btc3.p, btc3.n)
            btc = PyUnicode_DecodeUTF8(<const char *>buf, n, NULL)
        elif btc_kind == 1:
            btc = _str(&btc1)
        else:
            btc = None
        nref = _str(&entry_ref)
        minor = amount
        if not status_set:
            sts = _BOOK
        elif _span_is(&status, b"BOOK", 4):
            sts = _BOOK
        else:
            sts = _str(&status)
        # ntry.sourceline is xmlGetLineNo(): node.line itself below 65535; at and above that
        # libxml2 keeps the real number elsewhere, so ask lxml (big files only).
        if 0 < ntry.line < 65535:
            line = ntry.line
        else:
            line = ntry_obj.sourceline
        # Every value exists before the object does: nothing can fail between here and return.
        e = layout_new(&_ENTRY)
        cvhub_set_slot(e, _ENTRY.offsets[0], minor)
        cvhub_set_slot(e, _ENTRY.offsets[1], ccy)
        cvhub_set_slot(e, _ENTRY.offsets[2], direction)
        cvhub_set_slot(e, _ENTRY.offsets[3], booking)
        cvhub_set_slot(e, _ENTRY.offsets[4], value)
        cvhub_set_slot(e, _ENTRY.offsets[5], reversal)
        cvhub_set_slot(e, _ENTRY.offsets[6], sts)
        cvhub_set_slot(e, _ENTRY.offsets[7], nref)
        cvhub_set_slot(e, _ENTRY.offsets[8], ref)
        cvhub_set_slot(e, _ENTRY.offsets[9], e2e)
        cvhub_set_slot(e, _ENTRY.offsets[10], instr)
        cvhub_set_slot(e, _ENTRY.offsets[11], None)
        cvhub_set_slot(e, _ENTRY.offsets[12], remit)
        cvhub_set_slot(e, _ENTRY.offsets[13], btc)
        cvhub_set_slot(e, _ENTRY.offsets[14], rtr)
        cvhub_set_slot(e, _ENTRY.offsets[15], party)
        cvhub_set_slot(e, _ENTRY.offsets[16], line)
        cvhub_set_slot(e, _ENTRY.offsets[17], _EMPTY)
        return e
