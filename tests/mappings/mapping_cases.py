"""Runs one sample file through the mapping its folder names and returns canonical JSON data.

Shared by the sample walker (tests/mappings/test_mapping_samples.py) and used to (re)generate
the expected-output files with CVHUB_REGEN_EXPECTED=1 (then reviewed by hand before committing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mappings.canonical_json import to_json
from mappings.errors import MappingError
from mappings.financing import parse_financing_decision
from mappings.pain002 import parse_pain002
from mappings.payables import parse_erp_ap, parse_srm_payables
from mappings.profiles import PROFILES
from mappings.registry import parse_registry_response
from mappings.statements import parse_statements_with_rejects

REPO = Path(__file__).resolve().parents[2]
OWN = Path(__file__).resolve().parent / "samples"
SHARED = REPO / ".." / "shared" / "samples"
SKIP_SUFFIXES = (".expected.json", ".json.expected", ".yml", ".md")


def kind_for(folder: str) -> tuple[str, str | None]:
    if folder in ("camt", "mt940"):
        return "statement", None
    if folder in PROFILES:
        return "statement", folder
    return {"pain002": ("pain002", None), "srm": ("srm", None), "erp": ("erp_ap", None),
            "financing": ("financing", None), "registry": ("registry", None)}[folder]


def run_case(kind: str, data: bytes, source: str, options: dict[str, Any]) -> dict[str, Any]:
    try:
        return _run(kind, data, source, options, verify=True)
    except MappingError as e:
        out: dict[str, Any] = {"error": e.as_dict()}
        if kind == "statement":
            try:
                out["unchecked"] = _run(kind, data, source, options, verify=False)
            except MappingError as e2:
                out["unchecked"] = {"error": e2.as_dict()}
        return out


def _run(kind: str, data: bytes, source: str, options: dict[str, Any], *, verify: bool) -> dict[str, Any]:
    if kind == "statement":
        last = dict(options.get("last_sequences", {})) if verify else None
        statements, rejected = parse_statements_with_rejects(
            data, source=source, profile=options.get("profile"), last_sequences=last, verify=verify)
        result: dict[str, Any] = {"statements": to_json(statements), "rejected": to_json(rejected)}
        if last is not None and options.get("last_sequences"):
            result["last_sequences_after"] = last
        return result
    if kind == "pain002":
        return {"statuses": to_json(parse_pain002(data, source=source))}
    if kind == "srm":
        r = parse_srm_payables(data, source=source)
        return {"records": to_json(r.records), "rejected": to_json(r.rejected)}
    if kind == "erp_ap":
        r = parse_erp_ap(data, source=source)
        return {"records": to_json(r.records), "rejected": to_json(r.rejected)}
    if kind == "financing":
        return {"decision": to_json(parse_financing_decision(data, source=source))}
    if kind == "registry":
        return {"response": to_json(parse_registry_response(data, source=source))}
    raise AssertionError(kind)


def sample_files() -> list[tuple[str, Path, Path]]:
    """(test id, sample path, expected path) for own and shared samples."""
    out: list[tuple[str, Path, Path]] = []
    for path in sorted(OWN.glob("*/*")):
        if path.name.endswith(SKIP_SUFFIXES) or path.parent.name == "shared":
            continue
        expected = path.with_name(path.name + ".expected.json")
        out.append((f"own/{path.parent.name}/{path.name}", path, expected))
    for path in sorted(SHARED.glob("*/*")):
        if path.suffix not in (".xml", ".sta"):
            continue
        expected = OWN / "shared" / path.parent.name / (path.name + ".expected.json")
        out.append((f"shared/{path.parent.name}/{path.name}", path, expected))
    return out
