"""The ``cvhub`` command: assembles each package's own Typer sub-application.

Sub-applications import their heavy dependencies inside their commands, so ``cvhub --help`` and
``cvhub ledger ...`` stay fast and never import Airflow.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

app = typer.Typer(
    name="cvhub",
    help="Integration hub for electronic credit voucher platforms.",
    no_args_is_help=True,
    add_completion=False,
)

# (command name, module, attribute, help). A module that is not there yet is skipped, so the
# command keeps working while the packages grow.
_SUBAPPS = [
    ("ledger", "ledger.cli", "app", "The canonical voucher ledger: apply, verify, show, export."),
    ("recon", "ledger.recon.cli", "app", "Reconciliation and the finance package."),
    ("quarantine", "ledger.quarantine_cli", "app", "Failed items: list, show, replay."),
    ("map", "mappings.cli", "app", "Map external formats onto the canonical model."),
    ("registry", "connectors.registry.cli", "app", "Registry (中登网) manual queue."),
    ("sandbox", "sandbox.cli", "app", "Run the sandbox stand-ins of every external system."),
    ("connector", "connectors.cli", "app", "Connector scaffolding and conformance checks."),
    ("bench", "bench.cli", "app", "Benchmarks (ratios against a baseline measured in the same run)."),
]


def _register() -> None:
    for name, module, attr, help_text in _SUBAPPS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module or module.startswith(e.name + ".")):
                continue  # that part of cvhub is not built yet
            raise
        app.add_typer(getattr(mod, attr), name=name, help=help_text)


_register()


def _verify_stores(db: str | None, ledger_engine: Any) -> list[Any]:
    """``cvhub ledger verify``'s store checks (recon, quarantine, flows, registry, processed files),
    composed here at the edge: the ledger package never imports connectors or flows."""
    import dataclasses

    from cvhub.settings import Settings
    from plugins.cvhub_flows.flow_verify import store_checks

    settings = Settings.from_env()
    if db is not None:
        settings = dataclasses.replace(settings, db_url=db)
    return list(store_checks(settings, ledger_engine))


try:
    import ledger.cli as _ledger_cli

    _ledger_cli.STORE_CHECKS = _verify_stores
except ModuleNotFoundError:  # pragma: no cover - the ledger part not built
    pass


@app.command()
def demo(
    db: str = typer.Option(None, "--db", help="Ledger database URL (default: CVHUB_DB_URL or SQLite)."),
    ledger_only: bool = typer.Option(
        False, "--ledger-only", help="Only the ledger scenario (no Airflow, no sandboxes): seconds, not tens."
    ),
) -> None:
    """Run the main job: the whole product end to end through Airflow against the sandboxes."""
    if ledger_only:
        from cvhub.demo import run_demo as run_ledger_scenario

        raise typer.Exit(run_ledger_scenario(db))
    # Airflow is configured (AIRFLOW_HOME under the data dir) inside run_demo, before it is imported.
    from plugins.cvhub_flows.demo import run_demo

    raise typer.Exit(run_demo(db))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
