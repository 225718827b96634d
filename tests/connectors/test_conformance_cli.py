"""`cvhub connector`: list, check (runs the conformance kit) and new (the scaffold passes it as generated)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.cli import scaffold
from cvhub.cli import app

REPO = Path(__file__).resolve().parents[2]


def test_list_shows_connectors_with_a_conformance_declaration() -> None:
    result = CliRunner().invoke(app, ["connector", "list"])
    assert result.exit_code == 0
    assert {"srm", "registry", "bank_b"} <= set(result.output.split())


def test_check_runs_the_conformance_kit() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cvhub.cli", "connector", "check", "srm", "--", "-x"],
        capture_output=True,
        check=False,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "14 passed" in run.stdout


def test_check_unknown_connector_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["connector", "check", "nosuchbank"])
    assert result.exit_code == 2 and "adapter_factory" in result.output


def test_scaffold_refuses_bad_names_and_overwrites(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name"):
        scaffold("Bank-C", tmp_path)
    with pytest.raises(ValueError, match="reserved"):
        scaffold("rest", tmp_path)
    scaffold("bank_c", tmp_path)
    with pytest.raises(FileExistsError):
        scaffold("bank_c", tmp_path)
    result = CliRunner().invoke(app, ["connector", "new", "bank_c", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "--force" in result.output


def test_scaffolded_connector_passes_the_kit_as_generated(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["connector", "new", "acme_bank", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    generated = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.py"))
    assert generated == [
        "connectors/acme_bank/__init__.py",
        "connectors/acme_bank/client.py",
        "connectors/acme_bank/conformance.py",
        "sandbox/acme_bank.py",
        "tests/connectors/test_conformance_acme_bank.py",
    ]
    first_party = "lint.isort.known-first-party=['connectors','sandbox','ledger','mappings','cvhub']"
    lint = subprocess.run(
        [
            str(REPO / ".venv/bin/ruff"),
            "check",
            "--config",
            str(REPO / "pyproject.toml"),
            "--config",
            first_party,
            str(tmp_path),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout
    # Make the generated packages importable next to the real ones, as if written into the checkout.
    boot = textwrap.dedent(f"""
        import sys, connectors, sandbox, pytest
        connectors.__path__.append({str(tmp_path / "connectors")!r})
        sandbox.__path__.append({str(tmp_path / "sandbox")!r})
        sys.exit(pytest.main([{str(tmp_path / "tests/connectors/test_conformance_acme_bank.py")!r}, "-q",
                              "-p", "no:cacheprovider", "--rootdir", {str(tmp_path)!r}]))
    """)
    run = subprocess.run(
        [sys.executable, "-c", boot], capture_output=True, check=False, text=True, timeout=240, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "14 passed" in run.stdout
