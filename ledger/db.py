"""Database plumbing of the ledger: engines with the right pragmas, and migrations to head.

SQLite (the embedded default) runs in WAL mode with ``synchronous=NORMAL``, foreign keys on, a busy
timeout, and ``BEGIN IMMEDIATE`` transactions so two writers never deadlock on a lock upgrade.
PostgreSQL goes through psycopg 3. The schema is created only by the Alembic revisions packaged in
``ledger/migrations``; this module never calls ``create_all``.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# execution options for read-only work: on SQLite a deferred transaction (no write lock); elsewhere no-op
READ_OPTIONS = {"sqlite_begin": "DEFERRED"}
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs; leave others alone."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for ``url`` (``sqlite:///PATH`` or ``postgresql+psycopg://...``) with ledger pragmas.

    On SQLite every transaction begins IMMEDIATE (holds the write lock) unless the connection has
    the execution option ``sqlite_begin="DEFERRED"`` (``engine.execution_options(**READ_OPTIONS)``).
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # Dates as ISO text, explicitly (the implicit default adapter is deprecated from Python 3.12);
        # this is the same text SQLAlchemy's Date type writes and reads.
        sqlite3.register_adapter(date, date.isoformat)
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to emit.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Writers take the write lock up front (IMMEDIATE: no deadlock on a lock upgrade). Readers
            # use engine.execution_options(sqlite_begin="DEFERRED") (see READ_OPTIONS) so a long read
            # never blocks a writer; in WAL mode they see a consistent snapshot.
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql"):
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    raise ValueError(
        f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:/// or postgresql+psycopg://"
    )


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: every revision present in ``versions/``)."""
    from alembic import command

    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
