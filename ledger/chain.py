"""The journal's hash chain: canonical encoding of an entry (with its postings) and its SHA-256.

``hash = sha256(utf8(prev_hash + "\\n" + fields))`` where ``fields`` is the concatenation of
``f"{len(x)}:{x};"`` (length in characters) for ``x`` in ``[str(seq), key, cmd, body,
business_date, result_data]`` followed by ``account, currency, str(amount_minor)`` of every
posting in idx order. Length prefixes make the framing unambiguous without escaping; ``body`` and
``result_data`` are canonical JSON texts (sorted keys, no whitespace, UTF-8, non-ASCII unescaped).
The same function serves the writer, ``ledger.verify`` and the offline check of an exported
journal, so they cannot drift. Never touches the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

GENESIS_HASH = "0" * 64

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
_sha256 = hashlib.sha256


def canonical_json(value: Mapping[str, Any] | list[Any]) -> str:
    """Sorted keys, no whitespace, UTF-8 text (non-ASCII not escaped)."""
    return _dumps(value)


def entry_hash(  # noqa: PLR0917 - the entry's fields, in hash order
    prev_hash: str,
    seq: int,
    key: str,
    cmd: str,
    body: str,
    business_date: str,
    result_data: str,
    postings: Iterable[tuple[str, str, int]],
) -> str:
    """SHA-256 hex of an entry chained on ``prev_hash``; postings in their stored order (idx)."""
    s = str(seq)
    parts = [
        prev_hash,
        "\n",
        f"{len(s)}:{s};{len(key)}:{key};{len(cmd)}:{cmd};{len(body)}:{body};"
        f"{len(business_date)}:{business_date};{len(result_data)}:{result_data};",
    ]
    for account, currency, amount in postings:
        m = str(amount)
        parts.append(f"{len(account)}:{account};{len(currency)}:{currency};{len(m)}:{m};")
    return _sha256("".join(parts).encode()).hexdigest()
