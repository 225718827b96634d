"""Batch files that flow steps hand each other by reference (path + SHA-256), never through XCom.

A step writes what it fetched or computed for its data interval to
``<data_dir>/flows/<flow>/<interval>/<name>`` (atomically: temp file, fsync, rename) and returns a
``BatchRef`` dict; the next step reads it back and checks the hash, so a corrupted or swapped file
fails loudly instead of being processed. A rerun of the same interval finds the file and reuses it:
the same interval always means the same work. Holds no secrets (sources are redacted upstream).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.strict_json import dumps_exact
from cvhub.settings import Settings


class BatchIntegrityError(Exception):
    """A batch file is missing or its SHA-256 differs from the reference handed over."""


def interval_key(start: datetime) -> str:
    """A file-safe key of a data interval's start (UTC), e.g. ``20261130T0000``."""
    return start.strftime("%Y%m%dT%H%M")


def batch_path(settings: Settings, flow: str, interval: str, name: str) -> Path:
    for part in (flow, interval, name):
        if not part or "/" in part or part.startswith(".") or "\x00" in part:
            raise ValueError(f"bad batch path component {part!r}")
    return settings.data_dir / "flows" / flow / interval / name


def write_batch(path: Path, data: bytes) -> dict[str, Any]:
    """Write ``data`` atomically; returns the reference ``{"path", "sha256", "size"}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def write_json(path: Path, value: Any) -> dict[str, Any]:
    # dumps_exact: records from the connectors carry exact Decimal numbers (never floats)
    return write_batch(path, dumps_exact(value, ensure_ascii=False, sort_keys=True, indent=0).encode())


def existing(path: Path) -> dict[str, Any] | None:
    """The reference of an already written batch file (a rerun of the same interval), or None."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def read_batch(ref: dict[str, Any]) -> bytes:
    """The bytes of a referenced batch file, checked against its SHA-256."""
    path = Path(str(ref["path"]))
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise BatchIntegrityError(f"batch file {path} is missing") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref["sha256"]:
        raise BatchIntegrityError(f"batch file {path}: SHA-256 {digest} differs from {ref['sha256']}")
    return data


def read_json(ref: dict[str, Any]) -> Any:
    return json.loads(read_batch(ref))
