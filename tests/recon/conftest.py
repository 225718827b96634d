"""Fixtures for the reconciliation tests; the world they build lives in ``recon_world``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from recon_world import ClearingWorld, build_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ClearingWorld]:
    w = build_world(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    try:
        yield w
    finally:
        w.ledger.close()
