"""Process-wide settings, read from the environment once and validated.

Nothing else in cvhub reads ``os.environ`` for configuration: callers take a ``Settings`` (or the
values in it) as an argument. Secrets are not settings: they live in Airflow Connections or a
secrets backend and reach connectors through ``plugins/`` hooks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from canonical.clock import SYSTEM_CLOCK, Clock, business_clock, parse_clock_start

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Settings:
    """Where cvhub keeps its state.

    data_dir: the project's data directory (SQLite ledger, archive of raw exchanges, processed-file
        records, the finance packages); ``CVHUB_DATA_DIR``, default ``<project>/data``.
    db_url: the ledger database as an SQLAlchemy URL; ``CVHUB_DB_URL``, default a SQLite file
        ``<data_dir>/ledger.sqlite``.
    clock_start: ``CVHUB_CLOCK`` (``YYYY-MM-DD`` or an ISO instant with offset): run as if it were
        then; the business clock starts there and runs on. Unset: the system clock.
    clock: the business clock the edge hands down (``canonical.clock``): the demo's "today", audit
        stamps of operator actions. DAG tasks take their business date from the data interval.
    """

    data_dir: Path
    db_url: str
    clock_start: datetime | None = None
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("CVHUB_DATA_DIR") or PROJECT_ROOT / "data").resolve()
        db_url = env.get("CVHUB_DB_URL") or f"sqlite:///{data_dir / 'ledger.sqlite'}"
        if not db_url.startswith(("sqlite", "postgresql")):
            raise ValueError(f"CVHUB_DB_URL: unsupported database {db_url.split(':', 1)[0]!r}; "
                             "use sqlite:///PATH or postgresql+psycopg://...")
        start = env.get("CVHUB_CLOCK") or None
        try:
            clock_start = parse_clock_start(start) if start else None
        except ValueError as e:
            raise ValueError(f"CVHUB_CLOCK: {e}") from e
        return cls(data_dir=data_dir, db_url=db_url, clock_start=clock_start,
                   clock=business_clock(clock_start))

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
