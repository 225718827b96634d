"""Scan clean-up steps on synthetic pages: what each is for, checked on pixels."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from connectors.ocr.preprocess import Preprocess, otsu_threshold, prepare, remove_red, skew_angle


def page_with_lines() -> Image.Image:
    img = Image.new("RGB", (900, 900), "white")
    d = ImageDraw.Draw(img)
    for y in range(100, 800, 40):
        d.rectangle([80, y, 820, y + 12], fill="black")
    return img


def test_red_seal_ink_is_lifted_and_black_text_under_it_stays() -> None:
    img = Image.new("RGB", (30, 10), (255, 255, 255))
    img.paste((214, 38, 48), (0, 0, 10, 10))  # seal ink on paper
    img.paste((0, 0, 0), (10, 0, 20, 10))  # text
    img.paste((40, 8, 10), (20, 0, 30, 10))  # text under the seal (multiplied)
    out = np.asarray(remove_red(img))
    assert out[5, 5] > 200 and out[5, 15] < 30 and out[5, 25] < 60


def test_skew_is_found_and_removed() -> None:
    tilted = page_with_lines().rotate(-1.2, resample=Image.BICUBIC, fillcolor="white")
    angle = skew_angle(tilted.convert("L"))
    assert abs(angle - 1.2) <= 0.1
    assert abs(skew_angle(page_with_lines().convert("L"))) <= 0.05


def test_binarisation_threshold_separates_ink_from_paper() -> None:
    arr = np.asarray(page_with_lines().convert("L"))
    t = otsu_threshold(arr)
    assert 0 <= t < 255 and (arr <= t).any() and (arr > t).any()
    out, _ = prepare(page_with_lines(), Preprocess(binarise=True))
    assert set(np.unique(np.asarray(out))) <= {0, 255}
    default, angle = prepare(page_with_lines(), Preprocess())
    assert abs(angle) <= 0.05 and default.mode == "L"
