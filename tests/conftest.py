"""Shared fixtures: loopback-only network, PostgreSQL databases, a per-test data directory.

PostgreSQL tests skip locally (with the reason shown) when the server is unreachable, and fail
loudly when ``CI=true``: CI must never pass by skipping them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("CVHUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


# --- network: loopback only -----------------------------------------------------------------

def _is_loopback(address: object) -> bool:
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    if not (isinstance(address, tuple) and address):
        return False
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forbid sockets to anything but loopback: tests never reach a real bank or registry."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise ConnectionRefusedError(f"test network guard: connection to {address!r} forbidden")
        return real_connect(self, address)  # type: ignore[arg-type]

    def guarded_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise ConnectionRefusedError(f"test network guard: connection to {address!r} forbidden")
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_ex)


# --- data directory -------------------------------------------------------------------------

@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cvhub data directory, also exported as CVHUB_DATA_DIR for CLI tests."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("CVHUB_DATA_DIR", str(d))
    monkeypatch.delenv("CVHUB_DB_URL", raising=False)
    return d


# --- PostgreSQL -----------------------------------------------------------------------------

def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
        return None
    except Exception as e:  # any failure means "not reachable" for the skip decision
        return f"{type(e).__name__}: {e}".strip()


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a reachable PostgreSQL; skip (locally) or fail (CI) otherwise."""
    problem = _pg_reachable()
    if problem:
        msg = f"PostgreSQL at {PG_ADMIN_URL} unreachable: {problem}"
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL: {msg}")
        pytest.skip(msg)
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy URL); dropped afterwards."""
    import psycopg

    name = f"cvhub_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
