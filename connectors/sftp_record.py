"""The persistent record of processed SFTP files, with a claim/commit protocol.

A remote file is identified by ``(system, remote_dir, name, size, mtime)``; its SHA-256 is added when
it has been downloaded and verified, and content already committed under another name of the same
system is recognised as a duplicate delivery by that hash.

Protocol (at-least-once with a bound, never a silent skip):

1. ``claim(key)`` inserts a ``claimed`` row (or takes over a *stale* claim, i.e. one older than
   ``lease_seconds``, left behind by a crashed worker) and returns a ``Claim`` with a fresh token;
   it returns ``None`` if the file is ``done`` or freshly claimed by someone else.
2. the caller downloads, verifies, archives and processes the file;
3. ``commit(claim, sha256)`` marks it ``done`` (only if the token is still ours), or
   ``release(claim, reason)`` gives it back after a failure.

A crash between 1 and 3 leaves a ``claimed`` row: once the lease has expired the file is claimed
again and processed once more (the ledger's idempotency keys make the second pass a no-op there).
After ``max_attempts`` claims without a commit the row becomes ``failed`` and is listed by
``failed()`` for an operator (``reset()`` re-arms it): a poisonous file is never retried forever and
never dropped silently.

Stored with SQLAlchemy Core in any database URL (default: ``<data_dir>/connectors.sqlite``); the
table is created idempotently. This module never talks to a remote server.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from canonical.clock import SYSTEM_CLOCK, Clock

metadata = MetaData()

processed_files = Table(
    "sftp_processed_files",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("remote_dir", String(512), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("size", BigInteger, primary_key=True),
    Column("mtime", BigInteger, primary_key=True),
    Column("sha256", String(64), nullable=True),
    Column("state", String(16), nullable=False),  # claimed | done | duplicate | failed
    Column("token", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
    Column("note", String(500), nullable=True),
)
Index("ix_sftp_processed_sha", processed_files.c.system, processed_files.c.sha256)

FINISHED = ("done", "duplicate")


@dataclass(frozen=True, slots=True)
class FileKey:
    """What identifies one delivery of a remote file (before its hash is known)."""

    system: str
    remote_dir: str
    name: str
    size: int
    mtime: int


@dataclass(frozen=True, slots=True)
class Claim:
    key: FileKey
    token: str
    attempt: int


def default_db_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir) / 'connectors.sqlite'}"


class ProcessedFiles:
    """The processed-file record in one database. Safe to share between threads and processes."""

    def __init__(self, db_url: str, *, lease_seconds: float = 900.0, max_attempts: int = 3,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        # claims are leases between worker processes: measured in real time unless a run injects a clock
        self.clock = clock
        if db_url.startswith("sqlite:///"):
            Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(db_url, future=True)
        if self.engine.dialect.name == "sqlite":
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: object, _rec: object) -> None:
                cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=10000")
                cur.close()
        metadata.create_all(self.engine, checkfirst=True)
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts

    @classmethod
    def for_data_dir(cls, data_dir: Path, **kw: float) -> ProcessedFiles:
        return cls(default_db_url(data_dir), **kw)  # type: ignore[arg-type]

    @staticmethod
    def _where(key: FileKey):  # type: ignore[no-untyped-def]
        c = processed_files.c
        return and_(c.system == key.system, c.remote_dir == key.remote_dir, c.name == key.name,
                    c.size == key.size, c.mtime == key.mtime)

    def state(self, key: FileKey) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(processed_files.c.state).where(self._where(key))).scalar()

    def is_finished(self, key: FileKey) -> bool:
        return self.state(key) in FINISHED

    def claim(self, key: FileKey, *, now: datetime | None = None) -> Claim | None:
        """Claim ``key`` for processing; ``None`` when done, failed, or freshly claimed elsewhere."""
        now = now or self.clock()
        token = uuid.uuid4().hex
        c = processed_files.c
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(processed_files).values(
                    system=key.system, remote_dir=key.remote_dir, name=key.name, size=key.size,
                    mtime=key.mtime, state="claimed", token=token, attempts=1, claimed_at=now))
            return Claim(key, token, 1)
        except DbIntegrityError:
            pass
        with self.engine.begin() as conn:
            row = conn.execute(select(c.state, c.attempts, c.claimed_at, c.token)
                               .where(self._where(key))).one_or_none()
            if row is None or row.state != "claimed":
                return None
            claimed_at = row.claimed_at if row.claimed_at.tzinfo else row.claimed_at.replace(tzinfo=UTC)
            if claimed_at > now - self.lease:
                return None  # someone else is working on it right now
            if row.attempts >= self.max_attempts:
                conn.execute(update(processed_files).where(self._where(key), c.token == row.token)
                             .values(state="failed", note=f"{row.attempts} claims without a commit"))
                return None
            # Take over the stale claim atomically: only if nobody else took it meanwhile.
            res = conn.execute(update(processed_files)
                               .where(self._where(key), c.token == row.token, c.state == "claimed")
                               .values(token=token, attempts=row.attempts + 1, claimed_at=now))
            if res.rowcount != 1:
                return None
            return Claim(key, token, row.attempts + 1)

    def duplicate_of(self, system: str, sha256: str, *, exclude: FileKey | None = None) -> str | None:
        """The name of a finished file of ``system`` with this content, if any (duplicate delivery)."""
        c = processed_files.c
        q = select(c.remote_dir, c.name, c.size, c.mtime).where(
            c.system == system, c.sha256 == sha256, c.state.in_(FINISHED))
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                if exclude and (row.remote_dir, row.name, row.size, row.mtime) == (
                        exclude.remote_dir, exclude.name, exclude.size, exclude.mtime):
                    continue
                return f"{row.remote_dir}/{row.name}"
        return None

    def commit(self, claim: Claim, sha256: str, *, duplicate_of: str | None = None) -> None:
        """Mark the claimed file processed. Raises ``LookupError`` if the claim was taken over."""
        c = processed_files.c
        with self.engine.begin() as conn:
            res = conn.execute(update(processed_files)
                               .where(self._where(claim.key), c.token == claim.token, c.state == "claimed")
                               .values(state="duplicate" if duplicate_of else "done", sha256=sha256,
                                       done_at=self.clock(),
                                       note=f"duplicate of {duplicate_of}" if duplicate_of else None))
            if res.rowcount != 1:
                raise LookupError(f"claim on {claim.key.remote_dir}/{claim.key.name} was lost "
                                  "(lease expired and taken over)")

    def release(self, claim: Claim, reason: str, *, count_attempt: bool = True) -> None:
        """Give a claim back after a failure: claimable again at once. A counted failure (the
        processing failed) uses up one of ``max_attempts``; an uncounted one (the connection
        dropped, the server timed out) does not: transport trouble never quarantines a file.
        """
        c = processed_files.c
        exhausted = count_attempt and claim.attempt >= self.max_attempts
        values: dict[str, object] = {
            "state": "failed" if exhausted else "claimed",
            "note": reason[:500],
            # an expired lease makes the row claimable again at once
            "claimed_at": datetime(1970, 1, 1, tzinfo=UTC),
        }
        if not count_attempt:
            values["attempts"] = c.attempts - 1
        with self.engine.begin() as conn:
            conn.execute(update(processed_files)
                         .where(self._where(claim.key), c.token == claim.token, c.state == "claimed")
                         .values(**values))

    def fail(self, claim: Claim, reason: str, *, sha256: str | None = None) -> None:
        """Mark a claimed file ``failed`` at once (a permanent problem: bad content, bad name)."""
        c = processed_files.c
        with self.engine.begin() as conn:
            conn.execute(update(processed_files)
                         .where(self._where(claim.key), c.token == claim.token, c.state == "claimed")
                         .values(state="failed", note=reason[:500], sha256=sha256))

    def failed(self, system: str | None = None) -> list[tuple[FileKey, str | None]]:
        c = processed_files.c
        q = select(processed_files).where(c.state == "failed")
        if system:
            q = q.where(c.system == system)
        with self.engine.connect() as conn:
            return [(FileKey(r.system, r.remote_dir, r.name, r.size, r.mtime), r.note)
                    for r in conn.execute(q)]

    def reset(self, key: FileKey) -> None:
        """Re-arm a failed file (operator replay): it is claimed afresh on the next run."""
        with self.engine.begin() as conn:
            conn.execute(processed_files.delete().where(self._where(key),
                                                        processed_files.c.state == "failed"))

    def dispose(self) -> None:
        self.engine.dispose()
