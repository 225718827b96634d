"""Alembic runtime environment: migrates the connection handed in by ``ledger.db.migrate``.

Runs online only, on the connection in ``config.attributes["connection"]`` (or an engine made
from the ``sqlalchemy.url`` option). Never reads alembic.ini or the environment.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ledger.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, render_as_batch=conn.dialect.name == "sqlite"
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("cvhub migrations run online only (ledger.db.migrate)")
run_migrations_online()
