"""Tesseract as a subprocess: one page image in, words with boxes and confidences out.

Each run has a deadline (the process group is killed when it passes), an address-space limit
(RLIMIT_AS) and a CPU limit, one OpenMP thread, and reads the simplified-Chinese model installed
from Debian's ``tesseract-ocr-chi-sim`` (nothing is downloaded). Failures map onto
``canonical.documents`` errors: ``DeadlineExceeded``, ``OcrFailed``.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
from dataclasses import dataclass

from canonical.documents import DeadlineExceeded, OcrFailed


@dataclass(frozen=True, slots=True)
class OcrWord:
    block: int
    par: int
    line: int
    left: int
    top: int
    width: int
    height: int
    conf: float  # 0..1
    text: str


def tesseract_path() -> str | None:
    return shutil.which("tesseract")


@functools.cache
def installed_languages() -> frozenset[str]:
    exe = tesseract_path()
    if exe is None:
        return frozenset()
    cmd = [exe, "--list-langs"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout  # noqa: S603
    return frozenset(ln.strip() for ln in out.splitlines()[1:] if ln.strip())


def run_tesseract(
    png: bytes,
    *,
    dpi: int,
    language: str,
    timeout_s: float,
    memory_bytes: int,
    source: str | None = None,
    page: int | None = None,
    psm: int = 3,
) -> list[OcrWord]:
    exe = tesseract_path()
    if exe is None:
        raise OcrFailed(
            "tesseract is not installed (run ./setup.sh: Debian tesseract-ocr, tesseract-ocr-chi-sim)",
            source=source,
            page=page,
        )
    cpu = int(timeout_s) + 5

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_THREAD_LIMIT": "1", "LC_ALL": "C"}
    cmd = [
        exe,
        "stdin",
        "stdout",
        "-l",
        language,
        "--psm",
        str(psm),
        "--dpi",
        str(dpi),
        "-c",
        "preserve_interword_spaces=1",
        "tsv",
    ]
    proc = subprocess.Popen(  # noqa: S603 - the resolved tesseract binary, arguments built here
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    # Limits set from the parent (prlimit), not in a preexec_fn, which is unsafe in a threaded
    # process (Airflow workers are). The child cannot decode the page before it has read it from
    # stdin, which starts below, so the limits are in force before the expensive work.
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.prlimit(proc.pid, resource.RLIMIT_CPU, (cpu, cpu))
    except (ProcessLookupError, PermissionError, OSError) as e:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise OcrFailed(f"could not bound the OCR process: {e}", source=source, page=page) from e
    try:
        out, err = proc.communicate(png, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise DeadlineExceeded(
            f"OCR did not finish within {timeout_s:.0f} s", source=source, page=page
        ) from None
    if proc.returncode != 0:
        why = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        sig = f" (signal {-proc.returncode})" if proc.returncode < 0 else f" (exit {proc.returncode})"
        raise OcrFailed(f"tesseract failed{sig}: {why[0][:200]}", source=source, page=page)
    return parse_tsv(out.decode("utf-8", "replace"))


def parse_tsv(text: str) -> list[OcrWord]:
    words = []
    for row in text.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        words.append(
            OcrWord(
                int(cols[2]),
                int(cols[3]),
                int(cols[4]),
                int(cols[6]),
                int(cols[7]),
                int(cols[8]),
                int(cols[9]),
                max(0.0, float(cols[10])) / 100.0,
                cols[11].strip(),
            )
        )
    return words
