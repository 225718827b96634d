"""Cheap checks on a document's bytes before any expensive work: type by magic bytes, PDF trailer
present (truncation), active content names (JavaScript, launch actions, embedded files, XFA),
including inside compressed object streams. No PDF library is involved here."""

from __future__ import annotations

import re
import zlib
from typing import Literal

from canonical.documents import ActiveContent, CorruptDocument, UnsupportedDocument

FileType = Literal["pdf", "png", "jpeg", "tiff"]

_ACTIVE = {
    b"JavaScript",
    b"JS",
    b"Launch",
    b"EmbeddedFile",
    b"EmbeddedFiles",
    b"RichMedia",
    b"XFA",
    b"SubmitForm",
    b"ImportData",
    b"GoToE",
}
_ACTIVE_RE = re.compile(
    rb"/(JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA|SubmitForm|ImportData|GoToE)"
    rb"(?![A-Za-z0-9#])"
)
_ESCAPED_NAME_RE = re.compile(rb"/[A-Za-z0-9]*#[0-9A-Fa-f]{2}[A-Za-z0-9#]*")
_OBJSTM_RE = re.compile(rb"<<(?:(?!>>).){0,400}?/Type\s*/ObjStm(?:(?!>>).){0,400}?>>\s*stream\r?\n", re.S)
_MAX_INFLATED = 64 * 1024 * 1024


def sniff(data: bytes, source: str | None) -> FileType:
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    raise UnsupportedDocument("not a PDF, PNG, JPEG or TIFF file", source=source)


def check_pdf_bytes(data: bytes, source: str | None) -> None:
    tail = data[-2048:].rstrip(b"\r\n\t \x00")
    if not tail.endswith(b"%%EOF") and b"%%EOF" not in data[-2048:]:
        raise CorruptDocument("truncated PDF: no %%EOF at the end", source=source)
    if b"startxref" not in data[-4096:]:
        raise CorruptDocument("truncated PDF: no startxref before %%EOF", source=source)
    # Names are looked for outside streams only: compressed image and content bytes contain
    # "/JS" by chance (a scanned page's JPEG does, measured on the corpus). Object streams, where
    # PDF 1.5+ keeps dictionaries, are inflated and scanned separately.
    _check_names(_outside_streams(data), source, where="")
    inflated_total = 0
    for m in _OBJSTM_RE.finditer(data):
        body = data[m.end() : m.end() + _MAX_INFLATED]
        if b"/FlateDecode" in m.group(0) or b"/Fl " in m.group(0) or b"/Fl>" in m.group(0):
            d = zlib.decompressobj()
            try:
                chunk = d.decompress(body, _MAX_INFLATED - inflated_total)
            except zlib.error:
                continue  # damaged: pdfium judges the structure
        elif b"/Filter" not in m.group(0):
            end = body.find(b"endstream")
            chunk = body[: end if end >= 0 else len(body)]
        else:
            continue  # another filter: object streams use Flate in practice
        inflated_total += len(chunk)
        _check_names(chunk, source, where=" (in a compressed object stream)")
        if inflated_total >= _MAX_INFLATED:
            raise CorruptDocument("compressed object streams inflate beyond 64 MiB", source=source)


_STREAM_RE = re.compile(rb"stream\r?\n")


def _outside_streams(data: bytes) -> bytes:
    """The file with every stream's body cut out (from ``stream`` to the next ``endstream``)."""
    parts = []
    pos = 0
    while True:
        m = _STREAM_RE.search(data, pos)
        if m is None or data[m.start() - 3 : m.start()] == b"end":
            if m is None:
                parts.append(data[pos:])
                break
            parts.append(data[pos : m.end()])
            pos = m.end()
            continue
        parts.append(data[pos : m.start()])
        end = data.find(b"endstream", m.end())
        if end < 0:
            break
        pos = end + len(b"endstream")
    return b"".join(parts)


def _check_names(data: bytes, source: str | None, where: str) -> None:
    m = _ACTIVE_RE.search(data)
    if m:
        raise ActiveContent(
            f"PDF carries /{m.group(1).decode()}{where}; active content is refused", source=source
        )
    for m in _ESCAPED_NAME_RE.finditer(data):
        name = re.sub(rb"#([0-9A-Fa-f]{2})", lambda x: bytes([int(x.group(1), 16)]), m.group(0)[1:])
        if name in _ACTIVE:
            raise ActiveContent(
                f"PDF carries /{name.decode()} (hex-escaped){where}; active content is refused", source=source
            )
