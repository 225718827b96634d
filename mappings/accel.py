"""Loading the optional compiled accelerators of the statement parsers.

``mappings/_camt_accel.pyx`` and ``mappings/_mt940_accel.pyx`` (Cython, built by ``setup.sh`` /
``pip install -e .``) take over the per-entry work of the camt and MT940 parsers for entries of
the common shape and hand everything else back to the pure-Python code, which stays the
reference: an accelerated parse yields objects equal to the pure one, or the pure code runs.
``load`` returns the module, or None when it is not built or ``CVHUB_ACCEL=0`` is set (the
switch the differential tests and anyone debugging a parse use). ``status()`` says which are on.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

log = logging.getLogger(__name__)

_NAMES = ("camt", "mt940")
_loaded: dict[str, ModuleType | None] = {}


def enabled() -> bool:
    """False when the environment turns the accelerators off (``CVHUB_ACCEL=0``)."""
    return os.environ.get("CVHUB_ACCEL", "1").strip().lower() not in ("0", "false", "no", "off")


def load(name: str) -> ModuleType | None:
    """The compiled module ``mappings._<name>_accel``, or None (not built, or switched off)."""
    if name not in _NAMES:
        raise ValueError(f"unknown accelerator {name!r}")
    if not enabled():
        return None
    if name not in _loaded:
        try:
            _loaded[name] = importlib.import_module(f"mappings._{name}_accel")
        except ImportError as e:  # not compiled here: the pure-Python parser does the work
            log.info("mappings accelerator %s not available (%s); using the pure-Python parser", name, e)
            _loaded[name] = None
        except (ValueError, TypeError, Warning) as e:
            # Compiled against another lxml: Cython's check of lxml's extension type sizes
            # (ValueError, or a RuntimeWarning under -W error) and lxml's C-API import (TypeError)
            # run before the module's own version check can raise ImportError.
            log.warning("mappings accelerator %s is incompatible (%s: %s); rebuild it. Using the "
                        "pure-Python parser", name, type(e).__name__, e)
            _loaded[name] = None
    return _loaded[name]


def status() -> dict[str, bool]:
    """{name: whether the compiled accelerator is in use} for the benchmark and ``cvhub`` output."""
    return {name: load(name) is not None for name in _NAMES}
