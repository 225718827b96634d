"""``cvhub recon``: reconcile a statement against the ledger, write the daily finance package.

The CLI is the edge: it reads files, opens the ledger (migrated to head) and runs one transaction
per statement. ``run`` takes canonical statement JSON (what ``cvhub map statement`` prints); raw
bank files (camt.052/053/054, MT940/942, format detected) go through
``mappings.statements.parse_statements``, imported lazily inside the command (the engine itself
never imports mappings). Heavy imports
happen inside the commands so ``cvhub --help`` stays fast.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Reconciliation and the daily finance package.")


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def _read_statements(path: Path, fmt: str) -> list[Any]:
    from ledger.recon.statement_json import StatementJsonError, load_statements

    raw = path.read_bytes()
    head = raw.lstrip()[:1]
    if fmt == "json" or (fmt == "auto" and head in (b"{", b"[")):
        try:
            return load_statements(raw, str(path))
        except StatementJsonError as e:
            _fail(str(e))
    return _parse_bank_file(path, raw)


def _parse_bank_file(path: Path, raw: bytes) -> list[Any]:
    """A raw bank statement (camt.05x, MT940/942) through ``mappings.statements.parse_statements``,
    imported here only: the CLI is the edge, the engine never imports mappings."""
    try:
        from mappings.statements import parse_statements
    except ImportError:
        _fail(f"{path}: not canonical statement JSON, and no mappings parser is installed; "
              "convert it first with `cvhub map statement`")
    try:
        return list(parse_statements(raw, source=path.name))
    except Exception as e:  # the mappings error names file/line/field; show it as one line
        _fail(f"{path}: {e}")
    return []


@app.command("run")
def run(
    *,
    statement: Annotated[Path, typer.Option(
        "--statement", exists=True, dir_okay=False,
        help="Canonical statement JSON (or a raw bank file, see --format).")],
    db: Annotated[str | None, typer.Option(
        "--db", help="Ledger database URL (default: CVHUB_DB_URL or SQLite).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="json | auto (JSON, else a bank file via mappings).")] = "auto",
    window_before: Annotated[int, typer.Option(help="Days before the due date a payment may be valued.")] = 3,
    window_after: Annotated[int, typer.Option(help="Days after the due date a payment may be valued.")] = 5,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Business date (default: the statement's end date).")] = None,
) -> None:
    """Match a statement against the open expected items, settle the ledger, print the counts."""
    from ledger.api import Ledger
    from ledger.recon.model import MatchConfig
    from ledger.recon.service import ReconError, run_statement

    if fmt not in ("json", "auto"):
        _fail(f"--format: {fmt!r} is not one of json, auto")
    statements = _read_statements(statement, fmt)
    try:
        cfg = MatchConfig(window_before_days=window_before, window_after_days=window_after)
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError as e:
        _fail(str(e))
    led = Ledger.open(db)
    try:
        for st in statements:
            try:
                with led.session() as s:
                    r = run_statement(s, st, ledger=led, config=cfg, as_of=day)
            except ReconError as e:
                _fail(str(e))
            codes = " ".join(f"{k}={v}" for k, v in sorted(r.exceptions_by_code.items()))
            typer.echo(f"statement {r.statement_key} date={r.business_date} lines={r.line_count} "
                       f"matched={r.matched_lines} exceptions={r.exception_count} "
                       f"settled={r.settled_instructions}{' (already reconciled)' if r.replayed else ''}"
                       f"{' ' + codes if codes else ''}")
    finally:
        led.close()


@app.command("report")
def report(
    *,
    day: Annotated[str, typer.Option("--date", help="Business date YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="Directory to write the package into.")],
    db: Annotated[str | None, typer.Option(
        "--db", help="Ledger database URL (default: CVHUB_DB_URL or SQLite).")] = None,
    by: Annotated[str, typer.Option(
        "--by", help="all | account | obligor (one package per partition).")] = "all",
    encoding: Annotated[str, typer.Option(
        "--encoding", help="CSV encoding: utf-8-sig or gb18030.")] = "utf-8-sig",
) -> None:
    """Write the finance package of one business date and print its paths."""
    from ledger.api import Ledger
    from ledger.recon.package import PackageOptions, build_packages

    if by not in ("all", "account", "obligor"):
        _fail(f"--by: {by!r} is not one of all, account, obligor")
    if encoding not in ("utf-8-sig", "gb18030"):
        _fail(f"--encoding: {encoding!r} is not one of utf-8-sig, gb18030")
    try:
        business_date = date.fromisoformat(day)
    except ValueError:
        _fail(f"--date: {day!r} is not YYYY-MM-DD")
    led = Ledger.open(db)
    try:
        with led.session() as s:
            results = build_packages(s, business_date, out, ledger=led,
                                     options=PackageOptions(encoding=encoding, by=by))  # type: ignore[arg-type]
    finally:
        led.close()
    for r in results:
        for p in r.files:
            typer.echo(str(p))
