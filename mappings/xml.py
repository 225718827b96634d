"""Hardened XML for every mapping: one parser factory, one streaming helper, specific errors.

Every XML byte cvhub reads goes through here. The parser never resolves entities, never loads a
DTD, never touches the network, refuses any DOCTYPE outright (so billion-laughs, quadratic
blow-up and XXE cannot start), and enforces size, depth and text-length limits on top of
libxml2's own. ``iter_elements`` streams large files in constant memory by clearing each yielded
element and its finished siblings. This module must never read files or sockets itself: it
parses the bytes or binary stream it is handed.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TypeAlias

from lxml import etree

from mappings.errors import XmlLimitError, XmlSecurityError, XmlSyntaxError

Element: TypeAlias = etree._Element


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """Limits beyond libxml2's defaults (which stay on: huge_tree is never enabled)."""

    max_bytes: int = 64 * 1024 * 1024      # whole document; statements raise it for streaming
    max_depth: int = 64                    # ISO 20022 messages nest ~20 deep
    max_text: int = 64 * 1024              # any one text/attribute value read by a mapping
    max_prolog: int = 64 * 1024            # bytes before the root element's start tag
    # streaming only: bytes read without completing one yielded element (one camt entry). Bounds
    # the tree a single hostile entry can build in memory; a 10,000-payment batch entry is ~10 MB.
    max_element_bytes: int = 32 * 1024 * 1024


DEFAULT_LIMITS = XmlLimits()
STREAM_LIMITS = XmlLimits(max_bytes=64 * 1024 * 1024 * 1024)

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ROOT_START = re.compile(r"<(?![?!])")
_XMLNS = re.compile(r"""xmlns(?::([\w.-]+))?\s*=\s*["']([^"']*)["']""")
_ROOT_NAME = re.compile(r"<(?:([\w.-]+):)?([\w.-]+)")


def secure_parser(*, remove_blank_text: bool = False) -> etree.XMLParser:
    """A parser with every dangerous feature off. Use this, never ``etree.XMLParser()`` directly."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        attribute_defaults=False,
        remove_pis=True,
        collect_ids=False,
        remove_blank_text=remove_blank_text,
    )


def _decode_head(head: bytes) -> str:
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return head[len(bom):].decode(enc, errors="replace")
    if head[:2] in (b"\x00<", b"<\x00"):  # UTF-16 without BOM
        return head.decode("utf-16-be" if head[0] == 0 else "utf-16-le", errors="replace")
    return head.decode("latin-1")  # ASCII-compatible: enough to find markup


@dataclass(frozen=True, slots=True)
class Prolog:
    """What the bytes before (and at) the root start tag say: root name and its namespace."""

    root_local: str
    namespace: str | None


def inspect_prolog(head: bytes, *, source: str, limits: XmlLimits = DEFAULT_LIMITS) -> Prolog:
    """Refuse a DOCTYPE and find the root element's name and namespace from the first bytes.

    ``head`` must hold at least the prolog and the root start tag (the caller reads up to
    ``limits.max_prolog`` bytes). Raises XmlSecurityError on any DOCTYPE/ENTITY declaration.
    """
    text = _decode_head(head)
    pos = 0
    while True:
        m = _ROOT_START.search(text, pos)
        if m is None:
            break
        # skip comments, PIs and declarations before the root
        if text.startswith("<!--", m.start() - 0) or text.startswith("<?", m.start()):
            pos = m.end()
            continue
        break
    prolog_end = m.start() if m else len(text)
    prolog = text[:prolog_end]
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", prolog, re.IGNORECASE):
        raise XmlSecurityError("DOCTYPE declarations are refused (no DTD, no entities)",
                               source=source, line=prolog.count("\n") + 1, code="doctype_forbidden")
    if m is None:
        if len(head) >= limits.max_prolog:
            raise XmlLimitError(f"no root element within the first {limits.max_prolog} bytes",
                                source=source, line=1, code="too_large")
        raise XmlSyntaxError("no root element (empty or truncated document)", source=source,
                             line=1, code="malformed_xml")
    tag_end = text.find(">", m.start())
    start_tag = text[m.start(): tag_end if tag_end >= 0 else len(text)]
    name = _ROOT_NAME.match(start_tag)
    if name is None:
        raise XmlSyntaxError("unreadable root element", source=source, line=1)
    prefix, local = name.group(1), name.group(2)
    ns = None
    for p, uri in _XMLNS.findall(start_tag):
        if (p or None) == prefix:
            ns = uri
    return Prolog(root_local=local, namespace=ns)


class _LimitedReader(io.RawIOBase):
    """Binary reader that replays ``head`` then reads ``stream``, raising past ``max_bytes`` in all
    or past ``max_element_bytes`` since the streaming helper last completed an element."""

    def __init__(self, head: bytes, stream: IO[bytes] | None, max_bytes: int, source: str,
                 max_element_bytes: int | None = None) -> None:
        super().__init__()
        self._head = head
        self._stream = stream
        self._max = max_bytes
        self._source = source
        self._max_element = max_element_bytes
        self.consumed = 0
        self.mark = 0  # ``consumed`` when the last element was completed (set by iter_elements)

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        n = 1 << 20 if size is None or size < 0 else size
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
        elif self._stream is not None:
            data = self._stream.read(n)
        else:
            data = b""
        self.consumed += len(data)
        if self.consumed > self._max:
            raise XmlLimitError(f"document larger than {self._max} bytes", source=self._source,
                                code="too_large")
        if self._max_element is not None and self.consumed - self.mark > self._max_element:
            raise XmlLimitError(f"more than {self._max_element} bytes without completing one element "
                                f"(after byte {self.mark})", source=self._source, code="element_too_large")
        return data


def translate_syntax_error(e: etree.XMLSyntaxError, *, source: str) -> XmlSyntaxError | XmlLimitError:
    """Map libxml2's error onto our specific ones, keeping its line."""
    msg = str(e.msg or e)
    line = e.position[0] if e.position else e.lineno
    if msg == "no element found":  # iterparse's generic message: the real one is in the log
        fatals = [x for x in (getattr(e, "error_log", None) or ()) if x.level_name == "FATAL"]
        if fatals:
            msg, line = fatals[-1].message, fatals[-1].line
    if "Excessive depth" in msg:
        return XmlLimitError(f"nesting deeper than the parser allows: {msg}", source=source, line=line,
                             code="too_deep")
    if "huge" in msg.lower() or "xmlSAX2Characters" in msg:
        return XmlLimitError(f"text node too large: {msg}", source=source, line=line, code="text_too_long")
    if "Entity" in msg or "entity" in msg:
        return XmlSyntaxError(f"entity references are not allowed: {msg}", source=source, line=line,
                              code="entity_forbidden")
    if "encoding" in msg.lower() or "Input is not proper UTF" in msg or "Char 0x" in msg:
        return XmlSyntaxError(f"bad encoding: {msg}", source=source, line=line, code="bad_encoding")
    if "Premature end" in msg or "EndTag" in msg or "end of data" in msg or "Extra content" in msg:
        return XmlSyntaxError(f"truncated or unbalanced document: {msg}", source=source, line=line,
                              code="truncated")
    return XmlSyntaxError(msg, source=source, line=line, code="malformed_xml")


def _check_tree(root: Element, *, source: str, limits: XmlLimits) -> None:
    stack: list[tuple[Element, int]] = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > limits.max_depth:
            raise XmlLimitError(f"nesting deeper than {limits.max_depth}", source=source,
                                line=el.sourceline, code="too_deep")
        if not isinstance(el.tag, str):
            if isinstance(el, etree._Entity):
                raise XmlSecurityError("entity reference", source=source, line=el.sourceline,
                                       code="entity_forbidden")
            continue
        for text in (el.text, el.tail):
            if text is not None and len(text) > limits.max_text:
                raise XmlLimitError(f"text longer than {limits.max_text} characters",
                                    source=source, line=el.sourceline, field=etree.QName(el).localname,
                                    code="text_too_long")
        for value in el.attrib.values():
            if len(value) > limits.max_text:
                raise XmlLimitError(f"attribute longer than {limits.max_text} characters",
                                    source=source, line=el.sourceline, code="text_too_long")
        stack.extend((child, depth + 1) for child in el)


def parse_document(data: bytes, *, source: str, limits: XmlLimits = DEFAULT_LIMITS) -> tuple[Prolog, Element]:
    """Parse a whole (small) document with every limit applied; returns its prolog info and root."""
    if len(data) > limits.max_bytes:
        raise XmlLimitError(f"document larger than {limits.max_bytes} bytes", source=source,
                            code="too_large")
    prolog = inspect_prolog(data[: limits.max_prolog], source=source, limits=limits)
    try:
        root = etree.fromstring(data, secure_parser())
    except etree.XMLSyntaxError as e:
        raise translate_syntax_error(e, source=source) from e
    if root.getroottree().docinfo.doctype:  # belt and braces: inspect_prolog refuses it first
        raise XmlSecurityError("DOCTYPE declarations are refused", source=source, line=1,
                               code="doctype_forbidden")
    _check_tree(root, source=source, limits=limits)
    return prolog, root


def open_stream(stream: IO[bytes] | bytes, *, source: str,
                limits: XmlLimits = STREAM_LIMITS) -> tuple[Prolog, _LimitedReader]:
    """Read the prolog (refusing DOCTYPE) and return a size-limited reader replaying it."""
    if isinstance(stream, (bytes, bytearray, memoryview)):
        whole = bytes(stream)
        head, rest = whole[: limits.max_prolog], io.BytesIO(whole[limits.max_prolog:])
        reader_stream: IO[bytes] | None = rest
    else:
        head = stream.read(limits.max_prolog)
        reader_stream = stream
    prolog = inspect_prolog(head, source=source, limits=limits)
    return prolog, _LimitedReader(head, reader_stream, limits.max_bytes, source, limits.max_element_bytes)


def iter_elements(
    reader: IO[bytes] | _LimitedReader,
    tags: Iterable[str],
    *,
    source: str,
) -> Iterator[Element]:
    """Yield each complete element whose tag is in ``tags`` (Clark notation), in document order.

    After the consumer moves on, the element is cleared and every finished preceding sibling is
    removed, so memory stays constant however long the file. The consumer may read the element's
    parent and preceding siblings *before* asking for the next element (that is how a statement
    header is read at its first entry). Raises the specific XmlSyntaxError/XmlLimitError.
    """
    context = etree.iterparse(
        reader, events=("end",), tag=tuple(tags),
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_pis=True, remove_comments=True, collect_ids=False,
    )
    try:
        limited = reader if isinstance(reader, _LimitedReader) else None
        for _event, el in context:
            if limited is not None:
                limited.mark = limited.consumed
            yield el
            el.clear(keep_tail=False)
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as e:
        raise translate_syntax_error(e, source=source) from e


def local(el: Element) -> str:
    """The element's local name (tag without namespace)."""
    tag = el.tag
    assert isinstance(tag, str)
    return tag.rpartition("}")[2]
