"""Turn a rendered contract into a scan: rasterised, a red seal stamped over text (multiply blend,
as ink on paper), slightly rotated, noisy, saved as a scanned PDF, multi-page TIFF, PNG or JPEG."""

from __future__ import annotations

import io
import math
import random

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from sandbox.contracts.layout import _FONT_PATHS, Doc

SEAL_RGB = (214, 38, 48)


def rasterise(pdf: bytes, dpi: int) -> list[Image.Image]:
    doc = pdfium.PdfDocument(pdf)
    try:
        return [doc[i].render(scale=dpi / 72).to_pil().convert("RGB") for i in range(len(doc))]
    finally:
        doc.close()


def seal_layer(size: int, text: str, rng: random.Random) -> Image.Image:
    """A round company seal: ring, star, the name along the top arc. L mode: 255 = ink."""
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    r = size / 2
    ring = max(6, size // 40)
    draw.ellipse([ring, ring, size - ring, size - ring], outline=255, width=ring)
    star_r = size * 0.16
    pts = []
    for k in range(10):
        ang = -math.pi / 2 + k * math.pi / 5
        rr = star_r if k % 2 == 0 else star_r * 0.4
        pts.append((r + rr * math.cos(ang), r + rr * math.sin(ang)))
    draw.polygon(pts, fill=255)
    font = ImageFont.truetype(_FONT_PATHS[0], int(size * 0.11))
    chars = list(text)[:16]
    span = math.radians(240)
    for k, ch in enumerate(chars):
        ang = -math.pi / 2 - span / 2 + span * (k + 0.5) / len(chars)
        glyph = Image.new("L", (int(size * 0.14), int(size * 0.14)), 0)
        ImageDraw.Draw(glyph).text((glyph.width / 2, glyph.height / 2), ch, fill=255, font=font, anchor="mm")
        glyph = glyph.rotate(-math.degrees(ang) - 90, resample=Image.BICUBIC)
        rad = r - ring * 2 - size * 0.08
        cx, cy = r + rad * math.cos(ang), r + rad * math.sin(ang)
        img.paste(255, (int(cx - glyph.width / 2), int(cy - glyph.height / 2)), glyph)
    # uneven ink: some pixels lighter
    arr = np.asarray(img, dtype=np.float32)
    arr *= np.random.default_rng(rng.randrange(2**32)).uniform(0.55, 1.0, arr.shape).astype(np.float32)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "L")


def stamp(
    page: Image.Image, centre: tuple[float, float], diameter: int, text: str, rng: random.Random
) -> Image.Image:
    layer = seal_layer(diameter, text, rng)
    ink = np.zeros((page.height, page.width), dtype=np.float32)
    x0, y0 = int(centre[0] - diameter / 2), int(centre[1] - diameter / 2)
    sub = np.asarray(layer, dtype=np.float32) / 255.0
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(page.width, x0 + diameter), min(page.height, y0 + diameter)
    ink[ys:ye, xs:xe] = sub[ys - y0 : ye - y0, xs - x0 : xe - x0]
    arr = np.asarray(page, dtype=np.float32)
    tint = np.array(SEAL_RGB, dtype=np.float32) / 255.0
    # multiply: ink over paper takes the seal colour, ink over black text stays black
    factor = 1.0 - ink[..., None] * (1.0 - tint[None, None, :])
    return Image.fromarray((arr * factor).clip(0, 255).astype(np.uint8), "RGB")


def degrade(page: Image.Image, rng: random.Random, angle: float) -> Image.Image:
    page = page.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=(255, 255, 255))
    page = page.filter(ImageFilter.GaussianBlur(radius=0.5))
    nrng = np.random.default_rng(rng.randrange(2**32))
    arr = np.asarray(page, dtype=np.float32)
    arr = arr * 0.94 + 6.0  # paper is not white, toner not black
    arr += nrng.normal(0.0, 10.0, arr.shape[:2])[..., None]
    speckle = nrng.random(arr.shape[:2]) < 0.0008
    arr[speckle] = 30.0
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


def make_scan(pdf: bytes, doc: Doc, fmt: str, rng: random.Random, *, sealed: bool) -> tuple[bytes, float]:
    dpi = 300 if fmt in ("scanned_pdf", "tiff") else 200
    pages = rasterise(pdf, dpi)
    if fmt in ("png", "jpeg"):
        pages = pages[:1]
    scale = dpi / 72
    if sealed and "seal" in doc.marks:
        m = doc.marks["seal"]
        if m.page <= len(pages):
            i = m.page - 1
            diameter = int(1.6 * dpi)
            pages[i] = stamp(
                pages[i],
                (m.x * scale + diameter * 0.2, m.y * scale + 10 * scale),
                diameter,
                "合同专用章" + "有限公司",
                rng,
            )
    angle = round(rng.uniform(-1.5, 1.5), 2)
    pages = [degrade(p, rng, angle) for p in pages]
    out = io.BytesIO()
    if fmt == "scanned_pdf":
        pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=dpi, quality=80)
    elif fmt == "tiff":
        pages[0].save(
            out,
            format="TIFF",
            save_all=True,
            append_images=pages[1:],
            compression="jpeg",
            quality=80,
            dpi=(dpi, dpi),
        )
    elif fmt == "png":
        pages[0].save(out, format="PNG", dpi=(dpi, dpi), optimize=False)
    else:
        pages[0].save(out, format="JPEG", quality=85, dpi=(dpi, dpi))
    return out.getvalue(), angle
