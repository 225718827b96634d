"""Raw archive of every exchange, written before the exchange is processed.

Content-addressed: each payload is stored once under ``<root>/sha256/<aa>/<hash>`` (atomic write:
temp file, fsync, rename), and each exchange appends one JSON line to ``<root>/index.jsonl``
naming system, operation, direction, reference and hash. Payloads are redacted of secrets
*before* hashing and storing (a WS-Security password or an Authorization header never reaches
the disk); the hash is of the bytes as stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from canonical.clock import SYSTEM_CLOCK, Clock

Redactor = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class ArchivedItem:
    sha256: str
    size: int
    path: Path


class Archive:
    """A write-once store of raw exchanges. Safe for threads and for several processes."""

    def __init__(self, root: Path | str, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.root = Path(root)
        self.clock = clock  # when an exchange was received: real time unless a run injects its clock
        self._lock = threading.Lock()

    def store(
        self,
        data: bytes,
        *,
        system: str,
        operation: str,
        direction: str,
        ref: str | None = None,
        redact: Redactor | None = None,
        meta: dict[str, str] | None = None,
    ) -> ArchivedItem:
        """Archive ``data`` (redacted first if ``redact`` is given) and index it; returns its hash."""
        payload = redact(data) if redact else data
        digest = hashlib.sha256(payload).hexdigest()
        path = self.root / "sha256" / digest[:2] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        record = {
            "at": self.clock().isoformat(),
            "system": system,
            "operation": operation,
            "direction": direction,
            "ref": ref,
            "sha256": digest,
            "size": len(payload),
            **(meta or {}),
        }
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            # O_APPEND writes of one short line are atomic between processes on POSIX.
            fd = os.open(self.root / "index.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return ArchivedItem(digest, len(payload), path)

    def store_file(self, path: Path, **kw: object) -> ArchivedItem:
        """Archive a local file's bytes (statements, AP exports) — see ``store``."""
        return self.store(Path(path).read_bytes(), **kw)  # type: ignore[arg-type]

    def read(self, sha256: str) -> bytes:
        return (self.root / "sha256" / sha256[:2] / sha256).read_bytes()

    def entries(self) -> list[dict[str, object]]:
        index = self.root / "index.jsonl"
        if not index.exists():
            return []
        return [json.loads(x) for x in index.read_text(encoding="utf-8").splitlines() if x.strip()]
