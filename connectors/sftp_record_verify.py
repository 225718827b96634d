"""The processed-file record (``sftp_processed_files``) checked against the raw archive
(``ProcessedFilesCheck``, one of ``ledger verify``'s store checks, composed at the edge).

A file is recorded ``done`` (or ``duplicate``) only after it was downloaded, verified and archived
raw: the archive's index has a ``fetch`` entry of the same system for the same remote path with the
same SHA-256 and size, and the archived bytes hash to it. A duplicate names a finished file of the
same system with the same content. The ledger's journal does not cite files (their entries carry
their own keys), so the archive is what these rows derive from. The modification time, the claim
token and time and the attempt count are the protocol's own state: only their shape is checked.
Reads only; never creates the record's database.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.sftp_record import FINISHED, processed_files
from ledger.verify import JournalView, StoreCheck, Violation, canonical_value, read_store_table

STATES = ("claimed", "done", "duplicate", "failed")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ProcessedFilesCheck(StoreCheck):
    """``sftp_processed_files`` at ``url`` against the archive at ``archive_root``."""

    name = "SFTP processed files"

    def __init__(self, url: str, archive_root: Path) -> None:
        self.url = url
        self.archive_root = Path(archive_root)
        self.rows: list[tuple[Any, ...]] | None = None
        self.index: list[dict[str, Any]] = []
        self.index_error: str | None = None

    @property
    def summary(self) -> str:
        return f"SFTP processed files ({len(self.rows or [])})"

    def read(self) -> None:
        self.rows = read_store_table(self.url, processed_files)
        index = self.archive_root / "index.jsonl"
        if not self.rows or not index.exists():
            return
        with index.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    e = json.loads(line)
                except ValueError:
                    self.index_error = f"{index}:{n}: not JSON"
                    return
                if isinstance(e, dict) and e.get("operation") == "fetch" and e.get("direction") == "in":
                    self.index.append(e)

    def check(self, journal: JournalView) -> Iterator[Violation]:
        del journal  # these rows derive from the archive, not from the journal
        if not self.rows:
            return
        if self.index_error is not None:
            yield Violation("archive index.jsonl", "line", self.index_error)
            return
        by_ref: dict[tuple[str, str], list[dict[str, Any]]] = {}
        by_hash: dict[str, list[dict[str, Any]]] = {}
        for e in self.index:
            by_ref.setdefault((str(e.get("system")), str(e.get("ref"))), []).append(e)
            by_hash.setdefault(str(e.get("sha256")), []).append(e)
        cols = [c.name for c in processed_files.columns]
        rows = [dict(zip(cols, r, strict=True)) for r in self.rows]
        finished = {
            (r["system"], r["sha256"], f"{r['remote_dir']}/{r['name']}")
            for r in rows
            if r["state"] in FINISHED
        }
        hashed: dict[str, bool] = {}
        # files before the duplicates that name them: a changed file is reported as itself
        order = sorted(zip(self.rows, rows, strict=True), key=lambda p: p[1]["state"] == "duplicate")
        for raw, row in order:
            where = (
                f"sftp_processed_files system={row['system']} remote_dir={row['remote_dir']} "
                f"name={row['name']} size={row['size']} mtime={row['mtime']}"
            )
            for c, v in zip(processed_files.columns, raw, strict=True):
                try:
                    canonical_value(c, v)
                except ValueError as e:
                    yield Violation(where, c.name, f"unparsable value {v!r}: {e}")
                    return
            bad = self._row(row, by_ref, by_hash, finished, hashed)
            if bad is not None:
                yield Violation(where, bad[0], bad[1])
                return

    def _row(
        self,
        row: dict[str, Any],
        by_ref: dict[tuple[str, str], list[dict[str, Any]]],
        by_hash: dict[str, list[dict[str, Any]]],
        finished: set[tuple[Any, Any, str]],
        hashed: dict[str, bool],
    ) -> tuple[str, str] | None:
        state, sha = row["state"], row["sha256"]
        if state not in STATES:
            return "state", f"{state!r} is not one of {', '.join(STATES)}"
        if row["attempts"] < 1:
            return "attempts", f"{row['attempts']} (a row is made by a first claim)"
        if sha is not None and not _HEX64.fullmatch(sha):
            return "sha256", f"{sha!r} is not a SHA-256"
        if state not in FINISHED:
            return None
        if sha is None:
            return "sha256", f"missing on a {state} file"
        if row["done_at"] is None:
            return "done_at", f"missing on a {state} file"
        path = posixpath.join(row["remote_dir"], row["name"])
        entries = by_ref.get((row["system"], path), [])
        if not any(e.get("sha256") == sha and e.get("size") == row["size"] for e in entries):
            return _which(row, path, entries, by_hash.get(sha, []))
        if sha not in hashed:
            blob = self.archive_root / "sha256" / sha[:2] / sha
            try:
                hashed[sha] = hashlib.sha256(blob.read_bytes()).hexdigest() == sha
            except OSError:
                hashed[sha] = False
        if not hashed[sha]:
            return "sha256", f"the archive holds no file with this content ({sha[:16]}...)"
        if state == "duplicate":
            note = str(row["note"] or "")
            original = note.removeprefix("duplicate of ")
            if (
                not note.startswith("duplicate of ")
                or (row["system"], sha, original) not in finished
                or original == path
            ):
                return "note", f"{note!r} does not name a finished file of {row['system']} with this content"
        return None


def _which(
    row: dict[str, Any], path: str, entries: list[dict[str, Any]], same_content: list[dict[str, Any]]
) -> tuple[str, str]:
    """Which identifying column disagrees with the archive's record of the download."""
    if entries:
        if any(e.get("sha256") == row["sha256"] for e in entries):
            return (
                "size",
                f"stored {row['size']}, the archive recorded {entries[0].get('size')} bytes for {path}",
            )
        if any(e.get("size") == row["size"] for e in entries):
            return "sha256", f"the archive recorded other content for {path}"
        return "sha256", f"the archive recorded other content ({entries[0].get('sha256')}) for {path}"
    for e in same_content:
        ref = str(e.get("ref"))
        if e.get("system") != row["system"] and ref == path:
            return "system", f"stored {row['system']!r}, the archive recorded {path} for {e.get('system')!r}"
        if e.get("system") == row["system"] and e.get("size") == row["size"]:
            if posixpath.dirname(ref) == row["remote_dir"]:
                return "name", f"stored {row['name']!r}, the archive recorded this content as {ref}"
            if posixpath.basename(ref) == row["name"]:
                return (
                    "remote_dir",
                    f"stored {row['remote_dir']!r}, the archive recorded this content as {ref}",
                )
    return "name", f"the archive has no download of {path} by {row['system']} with this content"
