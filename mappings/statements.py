"""Bank statements in any supported format -> canonical ``Statement``s: detection, profiles, one API.

``iter_statements`` detects the format (camt.052/053/054 by namespace, MT940/MT942 by its fields)
or takes a named profile (``mappings.profiles``; CSV always needs one), and yields
``StatementReader``s whose entries stream lazily in constant memory; each statement's checks run
when its entries are exhausted. ``parse_statements`` is the small-file convenience returning whole
``Statement``s (and ``parse_statements_with_rejects`` also the quarantined CSV rows). The caller
passes the last accepted sequence per account; it is updated as statements pass.
No I/O beyond the stream handed in.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, MutableMapping
from typing import IO, cast

from ledger.canonical import RejectedRecord, Statement
from mappings.bank_csv import iter_bank_csv_items
from mappings.camt import iter_camt_items
from mappings.errors import UnsupportedFormat
from mappings.mt940 import DEFAULT_DIALECT, iter_mt940_items
from mappings.profiles import PROFILES, StatementProfile, profile_named
from mappings.statement_stream import CheckOptions, Item, StatementReader, assemble
from mappings.xml import STREAM_LIMITS, XmlLimits

__all__ = ["PROFILES", "StatementProfile", "detect_format", "iter_statements", "parse_statements",
           "parse_statements_with_rejects"]


class _Replay(io.RawIOBase):
    """Replays already-read head bytes, then continues with the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        if self._head:
            nl = self._head.find(b"\n")
            if nl >= 0:
                data, self._head = self._head[: nl + 1], self._head[nl + 1:]
                return data
            data, self._head = self._head, b""
            return data + self._rest.readline()
        return self._rest.readline()


def detect_format(head: bytes) -> str | None:
    """``camt`` / ``mt940`` from a file's first bytes, or None (CSV and unknown need a profile)."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<") or text.startswith(b"\xff\xfe<") or text.startswith(b"\xfe\xff"):
        return "camt"
    if b":20:" in head and (b":25:" in head or b":28" in head or b":60" in head):
        return "mt940"
    if text.startswith(b"{1:") or text.startswith(b":20:") or text.startswith(b":940:"):
        return "mt940"
    return None


def _items(stream: IO[bytes], source: str, profile: StatementProfile | None,
           limits: XmlLimits) -> Iterator[Item]:
    head = stream.read(4096)
    fmt = profile.format if profile is not None else detect_format(head)
    replay = cast(IO[bytes], _Replay(head, stream))
    if fmt == "camt":
        return iter_camt_items(replay, source=source, limits=limits)
    if fmt == "mt940":
        dialect = profile.mt940 if profile is not None and profile.mt940 is not None else DEFAULT_DIALECT
        return iter_mt940_items(replay, source=source, dialect=dialect)
    if fmt == "csv" and profile is not None and profile.csv is not None:
        return iter_bank_csv_items(replay, source=source, profile=profile.csv)
    raise UnsupportedFormat("cannot detect the statement format (not camt XML nor MT940); "
                            f"pass a profile, one of {sorted(PROFILES)}", source=source, line=1)


def iter_statements(
    stream: IO[bytes] | bytes,
    *,
    source: str,
    profile: str | StatementProfile | None = None,
    last_sequences: MutableMapping[str, int] | None = None,
    verify: bool = True,
    limits: XmlLimits = STREAM_LIMITS,
) -> Iterator[StatementReader]:
    """Statement readers of a file, in order; read each one's entries before asking for the next.

    ``last_sequences`` (account -> last accepted sequence) enables the gap/repeat check and is
    updated in place as statements pass. ``verify=False`` turns every acceptance check off
    (diagnostics only: such statements must not be booked).
    """
    prof = profile_named(profile) if isinstance(profile, str) else profile
    raw: IO[bytes] = io.BytesIO(stream) if isinstance(stream, (bytes, bytearray)) else stream
    options = CheckOptions(verify=verify, last_sequences=last_sequences)
    return assemble(_items(raw, source, prof, limits), source=source, options=options)


def parse_statements_with_rejects(
    data: bytes | IO[bytes], *, source: str, profile: str | StatementProfile | None = None,
    last_sequences: MutableMapping[str, int] | None = None, verify: bool = True,
) -> tuple[list[Statement], list[RejectedRecord]]:
    """Whole statements (entries in memory: small files) plus the rows quarantined from CSV files."""
    out: list[Statement] = []
    rejected: list[RejectedRecord] = []
    for reader in iter_statements(data, source=source, profile=profile, last_sequences=last_sequences,
                                  verify=verify):
        out.append(reader.collect())
        rejected.extend(reader.rejected)
    return out, rejected


def parse_statements(
    data: bytes | IO[bytes], *, source: str, profile: str | StatementProfile | None = None,
    last_sequences: MutableMapping[str, int] | None = None, verify: bool = True,
) -> list[Statement]:
    """Whole statements of a small file (see ``iter_statements`` for large ones)."""
    return parse_statements_with_rejects(data, source=source, profile=profile,
                                         last_sequences=last_sequences, verify=verify)[0]
