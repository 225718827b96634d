"""``cvhub bench <name> [ARGS...]``: runs ``bench/<name>.py``'s ``main(argv)``.

Each benchmark module parses its own arguments (argparse), so ``python -m bench.<name>`` and
``cvhub bench <name>`` behave the same.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True)

_BENCHES = {
    "ledger": "Batch posting vs bare executemany, SQLite and PostgreSQL.",
    "mappings": "camt.053 / MT940 parsing vs a bare lxml pass / line scan and PyPI parsers.",
    "sftp": "256 MB download/upload through the connector vs OpenSSH's sftp.",
    "soap": "1,000 SOAP calls through the connector vs raw POSTs; WSDL load cold/cached.",
    "recon": "1M statement lines vs 1M expected items vs a bare dict join.",
    "package": "Finance package CSV/XLSX writers (inert text) vs bare csv.writer / openpyxl.",
    "e2e": "The whole daily cycle through the DAGs.",
    "crash": "The main job killed with kill -9 at N points, each followed by a rerun that must match.",
    "review": "Contract review: field precision/recall on text PDFs and scans, planted cases, pages/s.",
}


def _make(name: str, help_text: str) -> None:
    @app.command(name, help=help_text, context_settings={"allow_extra_args": True,
                                                        "ignore_unknown_options": True})
    def _run(ctx: typer.Context) -> None:
        mod = importlib.import_module(f"bench.{name}")
        raise typer.Exit(mod.main(list(ctx.args)) or 0)


for _name, _help in _BENCHES.items():
    _make(_name, _help)
