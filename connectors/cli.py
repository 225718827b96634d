"""``cvhub connector``: scaffold a new connector package, list connectors, run the conformance kit.

- ``cvhub connector new NAME`` writes a working REST connector skeleton from
  ``connectors/templates/rest/``: ``connectors/NAME/{__init__,client,conformance}.py``,
  ``sandbox/NAME.py`` and ``tests/connectors/test_conformance_NAME.py``. It passes the conformance
  kit as generated; replace the sample operations with the system's real ones.
- ``cvhub connector list`` shows the connector packages that declare a conformance module.
- ``cvhub connector check NAME`` runs ``connectors.testing.conformance_suite`` for
  ``connectors.NAME.conformance`` (its ``adapter_factory`` / ``sandbox_factory``; or another
  sandbox factory, e.g. one for the bank's test environment, with ``--sandbox module:attr``).

Light at import: pytest and the connectors load inside the commands. Never overwrites a file
unless ``--force`` is given.
"""

from __future__ import annotations

import importlib
import importlib.util
import keyword
import pkgutil
import re
import string
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Connector scaffolding and conformance checks."
)

TEMPLATES = Path(__file__).parent / "templates"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
RESERVED = {"templates", "testing", "errors", "archive", "rest", "soap", "sftp", "cli"}


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def scaffold(name: str, root: Path, *, transport: str = "rest", force: bool = False) -> list[Path]:
    """Write the files of a new connector ``name`` under project ``root``; return their paths."""
    if not NAME.match(name) or keyword.iskeyword(name) or name in RESERVED:
        raise ValueError(f"connector name {name!r}: lower-case letters, digits and _ (2-31), not reserved")
    source = TEMPLATES / transport
    if not source.is_dir():
        known = sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir())
        raise ValueError(f"no template for transport {transport!r}; available: {', '.join(known)}")
    camel = "".join(part.capitalize() for part in name.split("_"))
    values = {"name": name, "Name": camel}
    targets = {
        "connector_init.py.txt": root / "connectors" / name / "__init__.py",
        "client.py.txt": root / "connectors" / name / "client.py",
        "conformance.py.txt": root / "connectors" / name / "conformance.py",
        "sandbox.py.txt": root / "sandbox" / f"{name}.py",
        "test_conformance.py.txt": root / "tests" / "connectors" / f"test_conformance_{name}.py",
    }
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        raise FileExistsError(f"would overwrite {', '.join(existing)} (use --force)")
    for template, target in targets.items():
        text = string.Template((source / template).read_text(encoding="utf-8")).substitute(values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return list(targets.values())


def conformance_modules() -> list[str]:
    """Names of connector packages that have a ``conformance`` module."""
    found = []
    # Our own directory, not ``connectors.__path__``: under pytest a tests/connectors namespace
    # portion can shadow the package's path.
    for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
        if info.ispkg and info.name not in RESERVED:
            spec = importlib.util.find_spec(f"connectors.{info.name}.conformance")
            if spec is not None:
                found.append(info.name)
    return sorted(found)


@app.command()
def new(
    name: str = typer.Argument(..., help="Package name, e.g. bank_c."),
    transport: str = typer.Option("rest", "--transport", help="Template to start from (rest)."),
    root: Annotated[
        Path | None, typer.Option("--root", help="Project root (default: this checkout).")
    ] = None,
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Scaffold a connector package, its sandbox and its conformance test."""
    try:
        files = scaffold(name, root or _project_root(), transport=transport, force=force)
    except (ValueError, FileExistsError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    for f in files:
        typer.echo(f"created {f}")
    typer.echo(
        f"next: replace the sample operations, then `cvhub connector check {name}` "
        "(see docs/connectors.md, 'Adding a bank connector')"
    )


@app.command("list")
def list_connectors() -> None:
    """Connector packages with a conformance declaration."""
    for name in conformance_modules():
        typer.echo(name)


@app.command()
def check(
    name: str = typer.Argument(..., help="Connector package, e.g. bank_b."),
    sandbox: str = typer.Option(
        None, "--sandbox", help="module:attr of another sandbox factory (e.g. a test environment)."
    ),
    pytest_args: Annotated[
        list[str] | None, typer.Argument(help="Extra pytest arguments (after --).")
    ] = None,
) -> None:
    """Run the conformance kit for a connector against its sandbox; exit code is pytest's."""
    import pytest

    module = f"connectors.{name}.conformance"
    try:
        declared = importlib.import_module(module)
        getattr(declared, "adapter_factory")  # noqa: B009 - a clear error if the declaration is incomplete
        factory_ref = f"{module}:sandbox_factory"
        if sandbox:
            mod_name, _, attr = sandbox.partition(":")
            getattr(importlib.import_module(mod_name), attr or "sandbox_factory")
            factory_ref = f"{mod_name}:{attr or 'sandbox_factory'}"
        else:
            getattr(declared, "sandbox_factory")  # noqa: B009
    except (ModuleNotFoundError, AttributeError) as e:
        typer.echo(f"error: {module} must define adapter_factory and sandbox_factory: {e}", err=True)
        raise typer.Exit(2) from e
    factory_module, factory_attr = factory_ref.split(":")
    with tempfile.TemporaryDirectory(prefix="cvhub-conformance-") as tmp:
        test_file = Path(tmp) / f"test_conformance_{name}.py"
        test_file.write_text(
            "from connectors.testing import conformance_suite\n"
            f"from {module} import adapter_factory\n"
            f"from {factory_module} import {factory_attr} as sandbox_factory\n\n"
            f"TestConformance = conformance_suite(adapter_factory, sandbox_factory, name={name!r})\n",
            encoding="utf-8",
        )
        code = pytest.main(
            [str(test_file), "-q", "-p", "no:cacheprovider", "--rootdir", tmp, *(pytest_args or [])]
        )
    sys.stdout.flush()
    raise typer.Exit(int(code))
