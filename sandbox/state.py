"""Durable state of the sandboxes: one small SQLite file per sandbox, written through on every change.

The systems the sandboxes stand in for keep what they were told: a registry does not forget a
registration because the hub that filed it crashed. So every sandbox keeps its business records
(registrations, payment batches, financing applications, write-backs, statement sequences...) in
memory as before, and mirrors each change into a ``SandboxStore``: ``(table, key) -> JSON value``
rows in ``<state_dir>/<sandbox>.sqlite``. A sandbox constructed with a state directory loads those
rows when it starts and carries on where it stopped; without one (the default, unit tests) the store
is a no-op and the sandbox lives in memory only.

Crash safety. A sandbox applies a change under its own lock inside ``store.transaction()``; the
rows are committed (one SQLite transaction, WAL journal) before the sandbox answers the request, so
a ``kill -9`` at any instant leaves either the state before the change or the state after it, and
the client's retry under the same serial finds the original answer. ``synchronous=NORMAL``: a
committed transaction survives the death of the process (the case here: the demo, the hub and the
sandboxes share one process); an operating-system crash may lose the last few, which a sandbox can
afford. Files a change produces (statements, status reports) are *staged* in the same transaction
(``stage``) and written after the commit; whatever a crash left staged is written again, byte for
byte, when the sandbox next starts (``staged``/``unstage``), so a statement sequence never has a
gap and a file never changes under its name.

Each commit also records the business clock's instant (``meta``/``at``): ``high_water(state_dir)``
is the latest instant any sandbox committed, and the sandbox stack starts its clock no earlier, so
business time never runs backwards for the outside world across a restart.

Sandbox only: never imported by production code.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from canonical.clock import Clock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    tbl   TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tbl, key)
);
"""
META = "meta"
STAGED = "_staged"


class SandboxStore:
    """Durable ``(table, key) -> JSON`` rows of one sandbox (see the module docstring).

    ``path`` None: in memory only; every write is a no-op and ``load`` returns nothing. Writes are
    allowed only inside ``transaction()`` (reentrant: the outermost block commits, an exception rolls
    the whole block back). Thread-safe; hold the sandbox's own lock first, then this store's.
    """

    def __init__(self, path: Path | None, *, clock: Clock | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db

    @classmethod
    def open(cls, state_dir: Path | None, name: str, *, clock: Clock | None = None) -> SandboxStore:
        """The store of sandbox ``name`` under ``state_dir`` (None: in memory only)."""
        return cls(Path(state_dir) / f"{name}.sqlite" if state_dir is not None else None, clock=clock)

    @property
    def durable(self) -> bool:
        return self._db is not None

    # --- transactions ----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[SandboxStore]:
        with self._lock:
            if self._db is None:
                yield self
                return
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                if self.clock is not None:
                    self._write(META, "at", json.dumps(self.clock().isoformat()))
                self._commit()

    def _commit(self) -> None:
        """The one place a store commits (the crash campaign counts these)."""
        assert self._db is not None
        self._db.execute("COMMIT")

    def _require_transaction(self) -> None:
        if self._depth == 0:
            raise RuntimeError(f"sandbox store {self.path}: write outside a transaction")

    # --- rows ------------------------------------------------------------------------------------
    def put(self, table: str, key: str, value: Any) -> None:
        if self._db is None:
            return
        with self._lock:
            self._require_transaction()
            self._write(table, key, json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))

    def _write(self, table: str, key: str, text: str) -> None:
        assert self._db is not None
        # ON CONFLICT ... DO UPDATE keeps the row's rowid, so ``load`` keeps first-insertion order
        self._db.execute("INSERT INTO records (tbl, key, value) VALUES (?, ?, ?) "
                         "ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
                         (table, key, text))

    def delete(self, table: str, key: str) -> None:
        if self._db is None:
            return
        with self._lock:
            self._require_transaction()
            self._db.execute("DELETE FROM records WHERE tbl = ? AND key = ?", (table, key))

    def clear(self) -> None:
        """Forget everything (the sandbox's ``reset``)."""
        if self._db is None:
            return
        with self.transaction():
            assert self._db is not None
            self._db.execute("DELETE FROM records")

    def load(self, table: str) -> dict[str, Any]:
        """Every row of ``table``, in the order the keys were first written."""
        if self._db is None:
            return {}
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM records WHERE tbl = ? ORDER BY rowid",
                                    (table,)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def get(self, table: str, key: str, default: Any = None) -> Any:
        if self._db is None:
            return default
        with self._lock:
            row = self._db.execute("SELECT value FROM records WHERE tbl = ? AND key = ?",
                                   (table, key)).fetchone()
        return json.loads(row[0]) if row else default

    # --- staged files ----------------------------------------------------------------------------
    def stage(self, key: str, data: bytes, **meta: Any) -> None:
        """Remember a file to deliver, in the current transaction (see the module docstring)."""
        self.put(STAGED, key, {"data": base64.b64encode(data).decode(), **meta})

    def staged(self) -> list[tuple[str, bytes, dict[str, Any]]]:
        """Files staged and not yet confirmed delivered: (key, bytes, meta), oldest first."""
        out = []
        for key, doc in self.load(STAGED).items():
            data = base64.b64decode(doc.pop("data"))
            out.append((key, data, doc))
        return out

    def unstage(self, key: str) -> None:
        """The staged file ``key`` has been delivered."""
        with self.transaction():
            self.delete(STAGED, key)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def high_water(state_dir: Path) -> datetime | None:
    """The latest business instant any sandbox store under ``state_dir`` committed, if any."""
    latest: datetime | None = None
    for path in sorted(Path(state_dir).glob("*.sqlite")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM records WHERE tbl = ? AND key = 'at'", (META,)).fetchone()
        except sqlite3.DatabaseError:
            row = None
        finally:
            db.close()
        if row:
            at = datetime.fromisoformat(json.loads(row[0]))
            latest = at if latest is None or at > latest else latest
    return latest


def read_tables(path: Path) -> dict[str, dict[str, Any]]:
    """Every table of one store file, read-only (inspection: the crash campaign, tests)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT tbl, key, value FROM records ORDER BY rowid").fetchall()
    finally:
        db.close()
    out: dict[str, dict[str, Any]] = {}
    for tbl, key, value in rows:
        out.setdefault(tbl, {})[key] = json.loads(value)
    return out
