"""Builds cvhub's optional compiled accelerators (everything else is declared in pyproject.toml).

``mappings/_camt_accel.pyx`` and ``mappings/_mt940_accel.pyx`` are Cython fast paths for the two
statement parsers' per-entry work; the pure-Python parsers remain the reference and are used
whenever an accelerator is not built or refuses an entry (see docs/mappings.md, "Accelerators").
The camt accelerator reads lxml's element tree through lxml's public C API, so it is compiled
against the lxml pinned in pyproject's build requirements (the same version requirements.txt pins)
and checks at import that the running lxml/libxml2 is that version.
"""

from __future__ import annotations

import os

import lxml
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension("mappings._camt_accel", ["mappings/_camt_accel.pyx"], include_dirs=lxml.get_include()),
    Extension("mappings._mt940_accel", ["mappings/_mt940_accel.pyx"]),
]
# While working on one accelerator: CVHUB_BUILD_ONLY=_camt_accel python setup.py build_ext --inplace
only = os.environ.get("CVHUB_BUILD_ONLY")
if only:
    extensions = [e for e in extensions if e.name.endswith(only)]

setup(ext_modules=cythonize(extensions, language_level=3, quiet=True,
                            compiler_directives={"boundscheck": False, "wraparound": False}))
