"""Documents read for review: the text of a page with where each line sits, the limits a reader
enforces, and the one error root for a document the hub refuses to read.

The readers (``connectors/ocr/``) produce ``DocumentText``; the element rules
(``mappings/contracts/``) consume it and never see a file, a PDF library or an OCR engine.
Coordinates are PDF points (1/72 inch) from the page's top-left corner, for text layers and scans
alike (a scan's pixels are converted by its resolution), so evidence boxes mean the same thing
whatever the source. This module imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DocumentKind = Literal["text_pdf", "scanned_pdf", "image"]
PageSource = Literal["text", "ocr"]


@dataclass(frozen=True, slots=True)
class BBox:
    """A rectangle on a page in points from the top-left corner: x0 <= x1, y0 <= y1."""

    x0: float
    y0: float
    x1: float
    y1: float

    def union(self, other: BBox) -> BBox:
        return BBox(
            min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1)
        )

    def as_list(self) -> list[float]:
        return [round(self.x0, 1), round(self.y0, 1), round(self.x1, 1), round(self.y1, 1)]


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line (or one table cell on a line) of a page, as read.

    ``confidence`` is 1.0 for a text layer and the OCR engine's lowest word confidence (0..1) on
    the line for a scan. ``char_conf`` holds one confidence per character of ``text`` when the
    source gives them (OCR: each character inherits its word's), so a value read from part of a
    line carries the confidence of that part only.
    """

    text: str
    bbox: BBox
    confidence: float = 1.0
    char_conf: tuple[float, ...] = ()
    alternatives: tuple[tuple[str, str], ...] = ()  # (language, text): second readings of the line

    def span_confidence(self, start: int, end: int) -> float:
        if not self.char_conf or start >= end:
            return self.confidence
        part = self.char_conf[start:end]
        return min(part) if part else self.confidence


@dataclass(frozen=True, slots=True)
class PageText:
    number: int  # 1-based
    width: float  # points
    height: float
    source: PageSource
    lines: tuple[TextLine, ...]


@dataclass(frozen=True, slots=True)
class DocumentText:
    """All pages of one document, read completely (a reader never returns part of a document)."""

    sha256: str
    kind: DocumentKind
    pages: tuple[PageText, ...]

    @property
    def page_count(self) -> int:
        return len(self.pages)


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """What a reader accepts, checked before the expensive work (parsing, decoding, OCR).

    Defaults fit trade contracts: a few dozen pages, A4 scans at 300 dpi. ``deadline_s`` bounds a
    whole document; ``ocr_page_timeout_s`` and ``ocr_memory_bytes`` bound each OCR subprocess.
    """

    max_bytes: int = 64 * 1024 * 1024
    max_pages: int = 200
    max_pixels: int = 60_000_000  # per decoded image or rendered page (A4 at 600 dpi is 35 M)
    max_page_points: float = 14_400.0  # largest page side accepted (200 inches, PDF's own limit)
    dpi: int = 300  # rendering resolution for scanned PDF pages
    min_text_chars: int = 20  # fewer text-layer characters on a page: treat it as a scan
    deadline_s: float = 600.0
    ocr_page_timeout_s: float = 120.0
    ocr_memory_bytes: int = 1024 * 1024 * 1024
    ocr_language: str = "chi_sim"
    ocr_second_language: str | None = "chi_tra"  # re-reads unsure money lines; None: off

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pages", "max_pixels", "dpi", "ocr_memory_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DocumentLimits.{name} must be positive")
        if self.deadline_s <= 0 or self.ocr_page_timeout_s <= 0:
            raise ValueError("DocumentLimits deadlines must be positive")


class DocumentRefused(Exception):
    """Root of every reason a document is not read. ``code`` is stable and machine-readable.

    Raised before any partial result exists: a refused document yields nothing. ``source`` is the
    name or archive reference the caller gave, ``page`` the 1-based page where the problem was
    found, when there is one.
    """

    code = "document_refused"

    def __init__(self, message: str, *, source: str | None = None, page: int | None = None) -> None:
        self.message = message
        self.source = source
        self.page = page
        where = source or "<document>"
        if page is not None:
            where += f" page {page}"
        super().__init__(f"{where}: {message} [{self.code}]")

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "source": self.source, "page": self.page}


class UnsupportedDocument(DocumentRefused):
    code = "unsupported_type"


class DocumentTooLarge(DocumentRefused):
    code = "too_large"


class TooManyPages(DocumentRefused):
    code = "too_many_pages"


class EncryptedDocument(DocumentRefused):
    code = "encrypted"


class ActiveContent(DocumentRefused):
    code = "active_content"  # JavaScript, launch actions, embedded files


class DecompressionBomb(DocumentRefused):
    code = "decompression_bomb"  # declared pixels beyond max_pixels


class CorruptDocument(DocumentRefused):
    code = "corrupt"  # truncated, unparseable, inconsistent


class DeadlineExceeded(DocumentRefused):
    code = "deadline"


class OcrFailed(DocumentRefused):
    code = "ocr_failed"  # the engine crashed, ran out of memory or is missing
