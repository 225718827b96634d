"""A small page-layout helper over reportlab's canvas for CJK text: wrapped paragraphs, key/value
tables, and the boxes of what was drawn (the scan step stamps seals over recorded places)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

FONT = "CVHubCJK"
_FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # Debian fonts-wqy-zenhei (setup.sh)
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


def register_font() -> str:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return FONT
    for path in _FONT_PATHS:
        if os.path.exists(path):
            pdfmetrics.registerFont(TTFont(FONT, path, subfontIndex=0))
            return FONT
    raise RuntimeError("no CJK TrueType font found; run ./setup.sh (installs Debian fonts-wqy-zenhei)")


@dataclass
class Mark:
    page: int  # 1-based
    x: float  # points from the left, centre of the mark
    y: float  # points from the top


@dataclass
class Doc:
    """Draws top-down on A4 pages; ``marks`` remembers named places (e.g. the seller's seal)."""

    margin: float = 64.0
    size: float = 11.0
    leading: float = 1.65
    width: float = A4[0]
    height: float = A4[1]
    marks: dict[str, Mark] = field(default_factory=dict)

    def __post_init__(self) -> None:
        register_font()
        self._buf = io.BytesIO()
        self._c = canvas.Canvas(self._buf, pagesize=A4, invariant=1)
        self._c.setTitle("contract")
        self._page = 1
        self._y = self.margin

    # -- primitives -----------------------------------------------------------------------
    def _need(self, h: float) -> None:
        if self._y + h > self.height - self.margin:
            self._c.showPage()
            self._page += 1
            self._y = self.margin

    def _text(self, x: float, y_top: float, text: str, size: float) -> None:
        self._c.setFont(FONT, size)
        self._c.drawString(x, self.height - y_top - size, text)

    def wrap(self, text: str, size: float, width: float) -> list[str]:
        lines, cur = [], ""
        for ch in text:
            if pdfmetrics.stringWidth(cur + ch, FONT, size) > width:
                lines.append(cur)
                cur = ch
            else:
                cur += ch
        if cur:
            lines.append(cur)
        return lines

    # -- blocks ---------------------------------------------------------------------------
    def title(self, text: str, size: float = 20.0) -> None:
        self._need(size * 2.2)
        w = pdfmetrics.stringWidth(text, FONT, size)
        self._text((self.width - w) / 2, self._y, text, size)
        self._y += size * 2.2

    def para(self, text: str, *, size: float | None = None, indent: float = 0.0) -> None:
        size = size or self.size
        for line in self.wrap(text, size, self.width - 2 * self.margin - indent):
            self._need(size * self.leading)
            self._text(self.margin + indent, self._y, line, size)
            self._y += size * self.leading

    def two_columns(self, left: str, right: str, *, size: float | None = None) -> None:
        size = size or self.size
        self._need(size * self.leading)
        self._text(self.margin, self._y, left, size)
        self._text(self.width / 2 + 10, self._y, right, size)
        self._y += size * self.leading

    def table(
        self, rows: list[tuple[str, str]], *, key_width: float = 150.0, size: float | None = None
    ) -> None:
        size = size or self.size
        x0, x1 = self.margin, self.width - self.margin
        row_h = size * 2.0
        for key, value in rows:
            self._need(row_h)
            top = self._y
            self._c.setLineWidth(0.6)
            self._c.rect(x0, self.height - top - row_h, x1 - x0, row_h)
            self._c.line(x0 + key_width, self.height - top, x0 + key_width, self.height - top - row_h)
            pad = (row_h - size) / 2
            self._text(x0 + 6, top + pad, key, size)
            self._text(x0 + key_width + 8, top + pad, value, size)
            self._y += row_h
        self._y += size

    def space(self, points: float) -> None:
        self._y += points

    def mark(self, name: str, dx: float = 0.0) -> None:
        self.marks[name] = Mark(self._page, self.margin + dx, self._y)

    def finish(self) -> bytes:
        self._c.save()
        return self._buf.getvalue()

    @property
    def pages(self) -> int:
        return self._page
