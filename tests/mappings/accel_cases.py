"""What the two accelerator test files share: loading the compiled module and the CI rule.

The module is imported directly, not through ``mappings.accel.load``, so the differential
comparisons run even with ``CVHUB_ACCEL=0``; with ``CI=true`` a missing module is a failure, never
a skip, so CI cannot silently test (or benchmark) only the pure-Python path.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from mappings import accel

IN_CI = os.environ.get("CI", "").lower() == "true"


def import_accel(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"mappings._{name}_accel")
    except ImportError:
        return None


def needs_accel(mod: ModuleType | None, name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        mod is None and not IN_CI, reason=f"mappings._{name}_accel is not built (./setup.sh builds it)")


def assert_built_in_ci(mod: ModuleType | None, name: str, parser: ModuleType) -> None:
    """With CI=true: the module imported, and (unless switched off) the parser uses it."""
    if not IN_CI:
        pytest.skip("only enforced with CI=true")
    assert mod is not None, f"mappings._{name}_accel did not import"
    if accel.enabled():
        assert accel.load(name) is not None
        assert parser._ACCEL is not None
