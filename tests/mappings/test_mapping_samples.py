"""One parametrised walk over every sample file, each with its expected canonical JSON beside it.

Own samples: tests/mappings/samples/<folder>/<file> + <file>.expected.json (the folder names the
format or profile). Real bank files: ../shared/samples/ (read in place) with expected output under
tests/mappings/samples/shared/. An expected file may carry ``options`` (e.g. last_sequences).
Regenerate after a deliberate change with CVHUB_REGEN_EXPECTED=1, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mapping_cases import SHARED, kind_for, run_case, sample_files

CASES = sample_files()
REGEN = os.environ.get("CVHUB_REGEN_EXPECTED") == "1"


def test_samples_present() -> None:
    assert SHARED.is_dir(), f"shared samples not found at {SHARED}"
    assert len([c for c in CASES if c[0].startswith("shared/")]) >= 9
    assert len([c for c in CASES if c[0].startswith("own/")]) >= 30


@pytest.mark.parametrize(("case_id", "sample", "expected_path"), CASES, ids=[c[0] for c in CASES])
def test_sample_maps_to_expected(case_id: str, sample: Path, expected_path: Path) -> None:
    expected = json.loads(expected_path.read_text("utf-8")) if expected_path.exists() else {}
    options = expected.get("options", {})
    kind, profile = kind_for(sample.parent.name)
    if profile is not None:
        options.setdefault("profile", profile)
    actual = run_case(kind, sample.read_bytes(), sample.name, options)
    if REGEN:
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        body = {"options": expected["options"]} if "options" in expected else {}
        body.update(actual)
        expected_path.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", "utf-8")
        return
    assert expected_path.exists(), f"no expected output {expected_path}; run with CVHUB_REGEN_EXPECTED=1"
    expected.pop("options", None)
    assert actual == expected
