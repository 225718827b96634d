"""Measure what Tesseract (chi_sim, or chi_tra with ``12 chi_tra``) reads for each capital-amount character.

Debian's chi_sim model has no 叁, 柒, 捌 or 仟 in its character set, so it reads them as look-alikes
(参, 染, 抽, 什 ...). This renders random capital amounts in the Debian CJK fonts, clean and
degraded, OCRs them and tabulates, per character read, which capital it stood for. The table in
``mappings/contracts/ocr_capitals.py`` was derived from this output (``python -m
sandbox.contracts.calibrate``); rerun it when the model or the fonts change.
"""

from __future__ import annotations

import collections
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mappings.contracts.capitals import format_capital_amount

TESSERACT = shutil.which("tesseract") or "/usr/bin/tesseract"
FONTS = [
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rng = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    aligned = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in FONTS if len(argv) < 2 else ():
            if not Path(path).exists():
                continue
            for sheet in range(3):
                lines = [format_capital_amount(rng.randrange(1, 10**11)) for _ in range(30)]
                font = ImageFont.truetype(path, rng.choice([36, 44, 52]))
                im = Image.new("L", (2600, 120 * len(lines) + 100), 255)
                d = ImageDraw.Draw(im)
                for i, text in enumerate(lines):
                    d.text((80, 60 + i * 120), "人民币" + text, font=font, fill=0)
                arr = np.asarray(im, dtype=np.float32)
                if sheet:
                    arr = arr + np.random.default_rng(sheet).normal(0, 8 * sheet, arr.shape)
                img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
                f = Path(tmp) / "sheet.png"
                img.save(f)
                out = subprocess.run(  # noqa: S603 - the Debian tesseract, fixed arguments
                    [TESSERACT, str(f), "-", "-l", "chi_sim", "--psm", "6"],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=True,
                ).stdout
                got = [ln.replace(" ", "") for ln in out.splitlines() if ln.strip()]
                for want, raw in zip(lines, got, strict=False):
                    read = raw.removeprefix("人民币")
                    total += 1
                    if len(read) != len(want):
                        continue
                    aligned += 1
                    for w, r in zip(want, read, strict=True):
                        table[r][w] += 1
        # and through the corpus's own pipeline: reportlab + the scan step + the reader's clean-up
        from connectors.ocr.preprocess import Preprocess, prepare
        from sandbox.contracts.layout import Doc
        from sandbox.contracts.scan import degrade, rasterise

        lang = argv[1] if len(argv) > 1 else "chi_sim"
        for sheet in range(int(argv[0]) if argv else 6):
            size = [10.5, 11.0, 12.0][sheet % 3]
            dpi = [300, 200][sheet % 2]
            doc = Doc(size=size)
            lines = [format_capital_amount(rng.randrange(1, 10**11)) for _ in range(24)]
            for text in lines:
                doc.para("人民币" + text)
            for page in rasterise(doc.finish(), dpi):
                img, _ = prepare(degrade(page, rng, rng.uniform(-1.5, 1.5)), Preprocess())
                f = Path(tmp) / "sheet.png"
                img.save(f)
                out = subprocess.run(  # noqa: S603 - the Debian tesseract, fixed arguments
                    [TESSERACT, str(f), "-", "-l", lang, "--psm", "6", "--dpi", str(dpi)],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=True,
                ).stdout
                got = [ln.replace(" ", "") for ln in out.splitlines() if ln.strip()]
                for want, raw in zip(lines, got, strict=False):
                    read = raw.removeprefix("人民币").removeprefix("人民幣")
                    total += 1
                    if len(read) != len(want):
                        continue
                    aligned += 1
                    for w, r in zip(want, read, strict=True):
                        table[r][w] += 1
                lines = lines[len(got) :]
    print(f"lines {total}, aligned {aligned}", file=sys.stderr)
    for read, counts in sorted(table.items()):
        print(read, dict(counts.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
