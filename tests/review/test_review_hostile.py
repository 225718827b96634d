"""Hostile documents: each gets its own error code, before any expensive work, and nothing partial."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfgen import canvas

from canonical.documents import (
    ActiveContent,
    CorruptDocument,
    DeadlineExceeded,
    DecompressionBomb,
    DocumentLimits,
    DocumentRefused,
    DocumentTooLarge,
    EncryptedDocument,
    OcrFailed,
    TooManyPages,
    UnsupportedDocument,
)
from connectors.ocr import read_document
from connectors.ocr.tesseract import tesseract_path

needs_tesseract = pytest.mark.skipif(tesseract_path() is None, reason="tesseract not installed (./setup.sh)")


def text_pdf(pages: int = 1, encrypt: object = None) -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf, encrypt=encrypt, invariant=1)
    for i in range(pages):
        c.drawString(72, 720, f"Purchase contract page {i + 1} with enough text to count as a text layer")
        c.showPage()
    c.save()
    return buf.getvalue()


def hand_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF from numbered object bodies (1-based), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


PAGE_OBJECTS = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
]


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A real bomb: 1-bit greyscale, every row zeros; ~110 MB of pixels in ~110 kB of file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def refused(data: bytes, kind: type[DocumentRefused], **limits: object) -> DocumentRefused:
    with pytest.raises(kind) as e:
        read_document(data, limits=DocumentLimits(**limits), source="hostile.bin")  # type: ignore[arg-type]
    assert e.value.source == "hostile.bin" and e.value.code == kind.code
    return e.value


def test_error_codes_are_distinct_under_one_root() -> None:
    kinds = [
        UnsupportedDocument,
        DocumentTooLarge,
        TooManyPages,
        EncryptedDocument,
        ActiveContent,
        DecompressionBomb,
        CorruptDocument,
        DeadlineExceeded,
        OcrFailed,
    ]
    assert len({k.code for k in kinds}) == len(kinds)
    assert all(issubclass(k, DocumentRefused) for k in kinds)


def test_encrypted_pdf_with_a_user_password() -> None:
    err = refused(text_pdf(encrypt="secret"), EncryptedDocument)
    assert "password" in err.message


def test_encrypted_pdf_with_only_an_owner_password_is_refused_too() -> None:
    enc = StandardEncryption("", ownerPassword="owner", canPrint=0)
    refused(text_pdf(encrypt=enc), EncryptedDocument)


def test_pdf_with_javascript_open_action() -> None:
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        *PAGE_OBJECTS[1:],
        b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>",
    ]
    err = refused(hand_pdf(objs), ActiveContent)
    assert "/JavaScript" in err.message


def test_pdf_with_hex_escaped_javascript_name() -> None:
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        *PAGE_OBJECTS[1:],
        b"<< /S /J#61vaScript /J#53 (app.alert\\(1\\)) >>",
    ]
    assert "hex-escaped" in refused(hand_pdf(objs), ActiveContent).message


def test_pdf_with_javascript_inside_a_compressed_object_stream() -> None:
    inner = zlib.compress(b"5 0 << /S /JavaScript /JS (app.alert\\(1\\)) >>")
    stm = (
        b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n" % len(inner)
        + inner
        + b"\nendstream"
    )
    err = refused(hand_pdf([*PAGE_OBJECTS, stm]), ActiveContent)
    assert "compressed object stream" in err.message


def test_2000_page_pdf_is_refused_from_its_page_count() -> None:
    err = refused(text_pdf(pages=2000), TooManyPages)
    assert "2000 pages" in err.message


def test_truncated_pdf() -> None:
    data = text_pdf(pages=3)
    assert "truncated" in refused(data[: len(data) // 2], CorruptDocument).message


def test_corrupt_pdf_with_a_trailer_but_no_body() -> None:
    refused(b"%PDF-1.7\ngarbage garbage\nstartxref\n9\n%%EOF\n", CorruptDocument)


def test_image_decompression_bomb_is_refused_from_its_header() -> None:
    data = png_bomb()
    assert len(data) < 2_000_000
    assert "900000000 pixels" in refused(data, DecompressionBomb).message
    # below Pillow's own guard, the configured limit decides, from the header alone
    assert "10000x10000" in refused(png_bomb(10_000, 10_000), DecompressionBomb).message


def test_pdf_embedding_a_bomb_image_is_refused_before_rendering() -> None:
    pixels = zlib.compress(b"\x00" * (5_000 * 1_250))  # 40000 x 5000 at 1 bit, all black
    image = (
        b"<< /Type /XObject /Subtype /Image /Width 40000 /Height 5000 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 1 /Filter /FlateDecode /Length %d >>\nstream\n"
        % len(pixels)
        + pixels
        + b"\nendstream"
    )
    content = b"q 595 0 0 842 0 0 cm /Im0 Do Q"
    objs = [
        *PAGE_OBJECTS[:2],
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im0 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        image,
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    err = refused(hand_pdf(objs), DecompressionBomb)
    assert err.page == 1 and "40000x5000" in err.message


def test_page_whose_size_would_render_too_many_pixels() -> None:
    objs = [*PAGE_OBJECTS[:2], b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14000 14000] >>"]
    refused(hand_pdf(objs), DecompressionBomb)


def test_unknown_type_and_oversize() -> None:
    refused(b"PK\x03\x04 a zip file", UnsupportedDocument)
    refused(text_pdf(), DocumentTooLarge, max_bytes=100)


def test_nothing_partial_a_good_first_page_does_not_come_out_alone() -> None:
    # page 1 has a text layer; page 2 is an oversized page: the whole document is refused
    good = text_pdf(pages=1)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 20000 842] >>",
    ]
    assert read_document(good).page_count == 1
    err = refused(hand_pdf(objs), CorruptDocument)
    assert err.page == 2


@needs_tesseract
def test_ocr_deadline_kills_the_engine() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2480, 3508), "white").save(buf, format="PNG")
    refused(buf.getvalue(), DeadlineExceeded, ocr_page_timeout_s=0.001)


@needs_tesseract
def test_ocr_memory_bound_is_enforced() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1240, 1754), "white").save(buf, format="PNG")
    err = refused(buf.getvalue(), OcrFailed, ocr_memory_bytes=16 * 1024 * 1024)
    assert "tesseract failed" in err.message


def test_active_names_inside_stream_bytes_are_not_active_content() -> None:
    # compressed image bytes spell /JS by chance (the corpus's scanned PDFs did); a stream body is
    # data, not a dictionary: only object streams are looked into
    blob = b"\x00\x11/JS\x7f/JavaScript\x00"
    objs = [
        *PAGE_OBJECTS[:2],
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im0 4 0 R >> >> >>",
        b"<< /Type /XObject /Subtype /Image /Width 4 /Height 4 /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Length %d >>\nstream\n" % len(blob) + blob + b"\nendstream",
    ]
    from connectors.ocr.preflight import check_pdf_bytes

    check_pdf_bytes(hand_pdf(objs), "scan.pdf")  # no ActiveContent raised
