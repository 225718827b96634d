"""The ledger as flow steps see it: one ``Ledger`` per database URL, migrated to head once.

Flow steps apply commands through ``ledger_for(settings).apply(...)`` (one transaction per batch)
and open their own short transactions with ``ledger_session(settings)`` for reads and quarantine
writes. On SQLite a writer holds the database from its first statement, so a step never nests one
write transaction inside another: it reads, then applies, then records.

The URL comes from ``cvhub.settings.Settings``; nothing here reads the environment or holds
secrets (a PostgreSQL password, if any, is part of the operator's CVHUB_DB_URL).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cvhub.settings import Settings
from ledger.api import Ledger

_ledgers: dict[str, Ledger] = {}
_lock = threading.Lock()


def ledger_for(settings: Settings) -> Ledger:
    """The ledger at ``settings.db_url`` (opened and migrated to head the first time)."""
    with _lock:
        ledger = _ledgers.get(settings.db_url)
        if ledger is None:
            settings.ensure_dirs()
            ledger = Ledger.open(settings.db_url)
            _ledgers[settings.db_url] = ledger
        return ledger


def ledger_engine(settings: Settings) -> Engine:
    return ledger_for(settings).engine


@contextmanager
def ledger_session(settings: Settings) -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back if it raises."""
    with Session(ledger_engine(settings), expire_on_commit=False) as session, session.begin():
        yield session


def dispose_ledgers() -> None:
    """Close every pooled connection (tests and the demo call this before deleting a database)."""
    with _lock:
        for ledger in _ledgers.values():
            ledger.close()
        _ledgers.clear()
