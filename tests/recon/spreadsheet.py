"""A spreadsheet-grade reader for the injection tests: LibreOffice Calc, headless (Debian package
``libreoffice-calc-nogui``, installed by setup.sh when it runs as root).

``open_in_calc`` lets Calc import files the way a finance user's spreadsheet would at its most
credulous — CSV with formulas evaluated, leading/trailing spaces trimmed, special numbers detected,
comma *and* semicolon *and* tab as separators — and saves what it made of them as XLSX, which
openpyxl then reads: a cell Calc took for a formula comes back with ``data_type == "f"``.
Skips locally when ``soffice`` is missing, fails under ``CI=true`` (like the PostgreSQL tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
# LibreOffice's text-encoding numbers (rtl_TextEncoding) for the package's two CSV encodings
CHARSET = {"utf-8-sig": 76, "utf-8": 76, "gb18030": 85}


def soffice() -> str:
    path = shutil.which("soffice") or shutil.which("libreoffice")
    if path is None:
        msg = ("LibreOffice (soffice) not installed: run setup.sh as root, "
               "or apt-get install libreoffice-calc-nogui")
        if IN_CI:
            pytest.fail(f"CI=true requires LibreOffice: {msg}")
        pytest.skip(msg)
    return path


@dataclass(frozen=True)
class CalcCell:
    sheet: str
    coordinate: str
    value: object
    data_type: str


def _convert(files: list[Path], out: Path, profile: Path, infilter: str | None) -> None:
    cmd = [soffice(), "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}"]
    if infilter:
        cmd.append(f"--infilter={infilter}")
    cmd += ["--convert-to", "xlsx", "--outdir", str(out), *map(str, files)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)


def open_in_calc(files: list[Path], workdir: Path, *,
                 csv_encoding: str = "utf-8-sig") -> dict[str, list[CalcCell]]:
    """Every cell Calc made of each file (CSV or XLSX), by file name."""
    from openpyxl import load_workbook

    profile = workdir / "lo-profile"        # a private profile: no lock shared with anyone else
    out = workdir / "calc"
    csvs = [f for f in files if f.suffix == ".csv"]
    others = [f for f in files if f.suffix != ".csv"]
    # token order: separators, text delimiter, charset, first line, column formats, language,
    # quoted-as-text, detect special numbers, (export), (export), trim spaces, (export), evaluate formulas
    if csvs:
        _convert(csvs, out / "csv", profile,
                 f"CSV:44/59/9,34,{CHARSET[csv_encoding]},1,,0,false,true,false,false,true,-1,true")
    if others:
        _convert(others, out / "other", profile, None)
    result: dict[str, list[CalcCell]] = {}
    for f in files:
        converted = out / ("csv" if f.suffix == ".csv" else "other") / (f.stem + ".xlsx")
        assert converted.exists(), f"LibreOffice did not convert {f.name}"
        wb = load_workbook(converted)
        result[f.name] = [CalcCell(ws.title, c.coordinate, c.value, c.data_type)
                          for ws in wb.worksheets for row in ws.iter_rows() for c in row
                          if c.value is not None]
    return result
