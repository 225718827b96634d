"""CSV records with their line numbers and raw bytes, for the batch formats (bank CSV, ERP AP files).

Reads the bytes or binary stream it is handed line by line (constant memory), decodes each line
on its own (GB18030 or UTF-8, with or without BOM, or ``auto``), so a row with a bad encoding
becomes one bad record instead of failing the file; keeps each record's raw bytes for the
quarantine. Knows nothing about columns' meaning. No I/O beyond the stream handed in.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

GB18030_BOM = b"\x84\x31\x95\x33"
MAX_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One CSV record: ``fields`` (None if it could not be decoded/parsed, then ``error`` says why)."""

    line: int
    raw: bytes
    fields: list[str] | None
    error: str | None = None
    error_code: str | None = None


def detect_encoding(head: bytes, declared: str) -> str:
    """``declared`` unless it is ``auto``: then UTF-8 if the head decodes as UTF-8, else GB18030."""
    if declared != "auto":
        return declared
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith(GB18030_BOM):
        return "gb18030"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the end of the head
            return "gb18030"
    return "utf-8"


def _byte_lines(stream: IO[bytes] | bytes) -> Iterator[bytes]:
    raw: IO[bytes] = io.BytesIO(stream) if isinstance(stream, (bytes, bytearray)) else stream
    yield from raw  # BufferedReader / BytesIO iterate by b"\n"-terminated lines


def iter_csv_records(stream: IO[bytes] | bytes, *, encoding: str = "auto", delimiter: str = ",",
                     skip_lines: int = 0) -> Iterator[CsvRecord]:
    """Records of a CSV byte stream; the first ``skip_lines`` physical lines are skipped (preambles)."""
    lines = _byte_lines(stream)
    first = next(lines, None)
    if first is None:
        return
    enc = detect_encoding(first, encoding)
    # "auto": a line that is not UTF-8 is tried as GB18030 (ERP exports mix ASCII headers with
    # GB18030 data; a valid GB18030 Chinese line is practically never valid UTF-8)
    fallback = "gb18030" if encoding == "auto" and enc == "utf-8" else None
    for bom in (codecs.BOM_UTF8, GB18030_BOM):
        if first.startswith(bom):
            first = first[len(bom):]

    def all_lines() -> Iterator[bytes]:
        yield first
        yield from lines

    lineno = 0
    pending_raw: list[bytes] = []
    pending_text: list[str] = []
    start = 0
    for raw_line in all_lines():
        lineno += 1
        if lineno <= skip_lines:
            continue
        if not pending_raw:
            start = lineno
        if len(raw_line) > MAX_RECORD_BYTES or sum(map(len, pending_raw)) > MAX_RECORD_BYTES:
            yield CsvRecord(start, b"".join(pending_raw) + raw_line[:MAX_RECORD_BYTES], None,
                            f"record longer than {MAX_RECORD_BYTES} bytes", "too_large")
            pending_raw, pending_text = [], []
            continue
        try:
            try:
                text = raw_line.decode(enc)
            except UnicodeDecodeError:
                if fallback is None:
                    raise
                text = raw_line.decode(fallback)
        except UnicodeDecodeError as e:
            yield CsvRecord(start, b"".join(pending_raw) + raw_line, None,
                            f"not valid {enc} at byte {e.start}: {e.reason}", "bad_encoding")
            pending_raw, pending_text = [], []
            continue
        pending_raw.append(raw_line)
        pending_text.append(text)
        joined = "".join(pending_text)
        if joined.count('"') % 2 == 1:  # a quoted field continues on the next line
            continue
        raw = b"".join(pending_raw)
        pending_raw, pending_text = [], []
        if not joined.strip():
            continue
        try:
            rows = list(csv.reader([joined], delimiter=delimiter, strict=True))
        except csv.Error as e:
            yield CsvRecord(start, raw, None, f"malformed CSV: {e}", "malformed_csv")
            continue
        fields = rows[0] if rows else []
        yield CsvRecord(start, raw, [f.strip() for f in fields])
    if pending_raw:
        yield CsvRecord(start, b"".join(pending_raw), None, "unterminated quoted field at end of file",
                        "truncated")
