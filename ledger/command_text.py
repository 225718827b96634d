"""Strict parsing of JSON text that carries ledger commands (or journal lines): duplicate keys refused.

``json.loads`` silently keeps the LAST of two equal keys in one object, so a command line such as
``{"amount": "1.00", ..., "amount": "1000.00"}`` would be applied with an amount a reviewer of the
file may not have seen. Every place that turns text into a command goes through ``loads_strict``,
which refuses such a line with ``DuplicateField`` (result code ``duplicate_field``), at any depth.
Parsing only: never applies anything, never touches the database.
"""

from __future__ import annotations

import json
from typing import Any

DUPLICATE_FIELD = "duplicate_field"


class DuplicateField(ValueError):
    """An object in the text has the same key twice; ``field`` is that key."""

    code = DUPLICATE_FIELD

    def __init__(self, field: str) -> None:
        super().__init__(f"field {field!r} appears twice in one object")
        self.field = field


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateField(k)
        out[k] = v
    return out


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that raises ``DuplicateField`` (a ``ValueError``) on a repeated key."""
    return json.loads(text, object_pairs_hook=_no_duplicates)
