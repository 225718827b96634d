"""Page-image clean-up before OCR, each step measured by ``cvhub bench review --ablation``
(red-seal removal and deskew on by default, binarisation available and off):

- red-seal removal by colour: pixels whose red exceeds both green and blue by a margin take their
  red value (seal ink turns near-white; black text under the seal stays black);
- deskew: the angle in +-3 degrees whose row profile is sharpest (projection-profile variance),
  found on a downscaled copy, then the page is rotated back;
- denoise (3x3 median) and global Otsu binarisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True, slots=True)
class Preprocess:
    remove_seal: bool = True
    # Chosen by ``--ablation`` on 20 corpus scans (docs/review.md): seal removal + deskew scored
    # best; binarisation on top of deskew scored lower (Tesseract's LSTM reads greyscale).
    deskew: bool = True
    binarise: bool = False
    seal_margin: int = 50


def remove_red(img: Image.Image, margin: int = 50) -> Image.Image:
    """RGB -> L, red ink lifted out (see module doc)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.int32)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    lum = (r * 299 + g * 587 + b * 114) // 1000
    red = (r - np.maximum(g, b)) > margin
    out = np.where(red, r, lum)
    return Image.fromarray(out.clip(0, 255).astype(np.uint8), "L")


def otsu_threshold(gray: np.ndarray) -> int:
    """The grey level t that best splits ink (<= t) from paper (> t)."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    w = np.cumsum(hist)
    mu = np.cumsum(hist * np.arange(256))
    wt, mt = w[-1], mu[-1]
    denom = w * (wt - w)
    between = np.where(denom > 0, (mt * w - mu * wt) ** 2 / np.where(denom > 0, denom, 1), 0)
    return int(np.argmax(between))


def skew_angle(gray: Image.Image, max_deg: float = 3.0) -> float:
    """Degrees to rotate the page counter-clockwise (PIL convention) to make its lines level."""
    small = gray.copy()
    small.thumbnail((900, 900))
    arr = np.asarray(small)
    ink = Image.fromarray(((arr <= otsu_threshold(arr)) * 255).astype(np.uint8), "L")

    def sharpness(deg: float) -> float:
        rows = np.asarray(ink.rotate(deg, resample=Image.NEAREST, fillcolor=0), dtype=np.float64).sum(axis=1)
        return float(np.var(np.diff(rows)))

    best = max(np.arange(-max_deg, max_deg + 1e-9, 0.25), key=sharpness)
    fine = max(np.arange(best - 0.25, best + 0.25 + 1e-9, 0.05), key=sharpness)
    return round(float(fine), 2)


def prepare(img: Image.Image, steps: Preprocess) -> tuple[Image.Image, float]:
    """The image Tesseract reads, and the deskew angle applied (0 when off)."""
    gray = remove_red(img, steps.seal_margin) if steps.remove_seal and img.mode != "L" else img.convert("L")
    angle = 0.0
    if steps.deskew:
        angle = skew_angle(gray)
        if abs(angle) >= 0.05:
            gray = gray.rotate(angle, resample=Image.BICUBIC, fillcolor=255)
    if steps.binarise:
        gray = gray.filter(ImageFilter.MedianFilter(3))
        arr = np.asarray(gray)
        gray = Image.fromarray(((arr > otsu_threshold(arr)) * 255).astype(np.uint8), "L")
    return gray, angle
