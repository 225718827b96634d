"""The quarantine's own rules checked on its rows (``QuarantineCheck``, a store check of
``ledger.verify``).

``ledger.quarantine`` moves an item open -> replayed | discarded (and back to open when it fails
again): an open item has no resolution; a replayed or discarded one has its resolution and time;
a discarded one's resolution says so; occurrences count from one; the first sighting is not after
the last; the context is a JSON object; the source hash is a SHA-256. Which items must be in the
quarantine, and what a resolution must say, is each flow's knowledge (e.g. the SRM flow's check in
``plugins/cvhub_flows/flow_verify.py`` compares its items with the journal). Reads only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table

from ledger.quarantine import QuarantineItem, QuarantineStatus
from ledger.verify import JournalView, StoreCheck, Violation, canonical_value, table_rows

_HEX64 = re.compile(r"[0-9a-f]{64}")
ITEMS = cast(Table, QuarantineItem.__table__)


class QuarantineCheck(StoreCheck):
    """``quarantine_items`` in ``engine`` (migration ``0003_quarantine``)."""

    name = "quarantine"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    @property
    def summary(self) -> str:
        return f"quarantine ({self.count} items)"

    def check(self, journal: JournalView) -> Iterator[Violation]:
        conn = journal.same_database(self.engine)
        if conn is not None:
            yield from self._check(conn)
            return
        with self.engine.connect() as own:
            yield from self._check(own)

    def _check(self, conn: Connection) -> Iterator[Violation]:
        cols = [c.name for c in ITEMS.columns]
        for raw in table_rows(conn, ITEMS):
            self.count += 1
            row = dict(zip(cols, raw, strict=True))
            where = f"quarantine_items id={row['id']}"
            for c, v in zip(ITEMS.columns, raw, strict=True):
                try:
                    canonical_value(c, v)
                except ValueError as e:
                    yield Violation(where, c.name, f"unparsable value {v!r}: {e}")
                    return
            bad = _item(row)
            if bad is not None:
                yield Violation(where, bad[0], bad[1])
                return


def _item(row: dict[str, Any]) -> tuple[str, str] | None:
    status = row["status"]
    if status not in {s.value for s in QuarantineStatus}:
        return "status", f"{status!r} is not open, replayed or discarded"
    if not _HEX64.fullmatch(str(row["source_sha256"])):
        return "source_sha256", "not a SHA-256"
    if row["occurrences"] < 1:
        return "occurrences", f"{row['occurrences']}: an item is put at least once"
    if str(row["last_seen_at"]) < str(row["created_at"]):
        return "last_seen_at", "before created_at"
    try:
        context = json.loads(row["context"])
    except ValueError:
        context = None
    if not isinstance(context, dict):
        return "context", "not a JSON object"
    if status == QuarantineStatus.OPEN and row["resolution"] is not None:
        return "resolution", "set on an open item (an item put again is reopened without one)"
    if status != QuarantineStatus.OPEN:
        if row["resolution"] is None:
            return "resolution", f"missing on a {status} item"
        if row["replayed_at"] is None:
            return "replayed_at", f"missing on a {status} item"
        if (status == QuarantineStatus.DISCARDED) != str(row["resolution"]).startswith("discarded: "):
            return "resolution", f"{row['resolution']!r} on a {status} item"
    return None
