"""Rebuild a ledger's state from its journal: every journaled command replayed, in order, through
the ledger's own ``Ledger.apply`` into a scratch ledger held in memory.

``ledger.verify`` compares what this rebuilds with the stored state tables, row by row and column
by column; replaying (rather than folding the recorded results with a second implementation of the
state changes) means there is exactly one implementation of what a command does, and that a journal
whose chain was recomputed after an edit is caught at the first entry that does not follow from its
command. The scratch ledger is an in-memory SQLite database whose schema is copied from a template
migrated once per process by the ledger's Alembic revisions (so it is the real schema, in
milliseconds). Never writes to the ledger it reads; never reads the clock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from ledger.api import Ledger
from ledger.commands import LedgerConfig
from ledger.db import make_engine, migrate
from ledger.models import GENESIS_HASH

BATCH = 2000  # commands per replayed transaction (the scratch ledger's cache spans batches)

# the migrated empty schema, built once per process: (connection, the engine that owns it)
_template: list[tuple[sqlite3.Connection, Engine]] = []
_template_lock = threading.Lock()


def _memory_engine(conn: sqlite3.Connection) -> Engine:
    """An engine over one in-memory connection, with the ledger's pragmas and BEGIN IMMEDIATE."""
    return make_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)


def _schema_template() -> sqlite3.Connection:
    with _template_lock:
        if not _template:
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            engine = _memory_engine(conn)
            migrate(engine)
            _template.append((conn, engine))
        return _template[0][0]


def scratch_ledger(config: LedgerConfig | None = None) -> Ledger:
    """An empty ledger in memory with the migrated schema (a copy of the per-process template)."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    template = _schema_template()
    with _template_lock:
        template.backup(conn)
    return Ledger(_memory_engine(conn), config)


@dataclass(frozen=True, slots=True)
class Divergence:
    """A journaled entry its command does not reproduce: ``field`` names what differs."""

    seq: int
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Trial:
    """What one command gives when applied on top of the rebuilt state (then rolled back)."""

    result: str
    detail: str | None
    result_data: str | None
    postings: list[tuple[str, str, int]]


JournalRow = Sequence[Any]  # (seq, key, cmd, body, business_date, result_data, prev_hash, hash)


class Replayer:
    """A scratch ledger that has replayed the journal's first ``seq`` entries (head ``head_hash``).

    ``advance`` feeds it further entries. It may be kept between verifications of the same ledger:
    when the stored journal still has ``head_hash`` at ``seq`` (and the chain up to there holds),
    the stored prefix is the one replayed, so only the entries after it need replaying.
    """

    def __init__(self, config: LedgerConfig | None = None) -> None:
        self.ledger = scratch_ledger(config)
        self.seq = 0
        self.head_hash = GENESIS_HASH
        self.broken = False  # diverged from the journal: never reuse

    def close(self) -> None:
        self.ledger.close()

    @property
    def engine(self) -> Engine:
        return self.ledger.engine

    def advance(self, rows: Sequence[JournalRow]) -> Divergence | None:
        """Replay ``rows`` (stored entries seq+1, seq+2, ... in order); the first that differs."""
        led = self.ledger
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            cmds: list[dict[str, Any]] = []
            for row in chunk:
                try:
                    body = json.loads(row[3])
                except (TypeError, ValueError) as e:
                    self.broken = True
                    return Divergence(int(row[0]), "body", f"not a JSON command object: {e}")
                if not isinstance(body, dict):
                    self.broken = True
                    return Divergence(int(row[0]), "body", "not a JSON command object")
                cmds.append({**body, "key": row[1]})
            results = led.apply(cmds)
            for row, r in zip(chunk, results, strict=True):
                if r.result != "ok" or r.seq != row[0]:
                    self.broken = True
                    return Divergence(
                        int(row[0]),
                        "body",
                        f"replaying the command gives {r.result} (seq {r.seq}): {r.detail or ''}".strip(),
                    )
            first = int(chunk[0][0])
            with led.engine.connect() as conn:
                got = conn.exec_driver_sql(
                    "SELECT seq, hash, result_data FROM ledger_journal WHERE seq >= ? ORDER BY seq", (first,)
                ).all()
                for row, (seq, hsh, rdata) in zip(chunk, got, strict=True):
                    if hsh != row[7]:
                        self.broken = True
                        if rdata != row[5]:
                            return Divergence(
                                int(seq),
                                "result_data",
                                f"replaying the command gives {rdata}, the entry records {row[5]}",
                            )
                        return Divergence(
                            int(seq),
                            "ledger_postings",
                            "replaying the command gives other postings than the entry's: "
                            + _postings_text(conn, int(seq)),
                        )
            self.seq = int(chunk[-1][0])
            self.head_hash = str(chunk[-1][7])
        return None

    def trial(self, row: JournalRow) -> Trial:
        """Apply the stored entry ``row``'s command on top of the replayed state, then roll it back."""
        try:
            body = json.loads(row[3])
        except (TypeError, ValueError):
            return Trial("malformed", "the body is not JSON", None, [])
        if not isinstance(body, dict):
            return Trial("malformed", "the body is not a JSON object", None, [])
        with Session(self.ledger.engine) as s:
            s.begin()
            try:
                r = self.ledger.apply([{**body, "key": row[1]}], session=s)[0]
                if r.result != "ok" or r.seq is None:
                    return Trial(r.result, r.detail, None, [])
                conn = s.connection()
                rdata = conn.exec_driver_sql(
                    "SELECT result_data FROM ledger_journal WHERE seq = ?", (r.seq,)
                ).scalar_one()
                legs = [
                    (str(a), str(c), int(m))
                    for a, c, m in conn.exec_driver_sql(
                        "SELECT account, currency, amount_minor FROM ledger_postings WHERE entry_seq = ? "
                        "ORDER BY idx",
                        (r.seq,),
                    )
                ]
                return Trial("ok", None, str(rdata), legs)
            finally:
                s.rollback()


def _postings_text(conn: Any, seq: int) -> str:
    legs = conn.exec_driver_sql(
        "SELECT account, currency, amount_minor FROM ledger_postings WHERE entry_seq = ? ORDER BY idx", (seq,)
    ).all()
    return ", ".join(f"{a} {c} {m}" for a, c, m in legs) or "none"
