"""``cvhub recon``: reconcile a statement against the ledger, write the daily finance package.

The CLI is the edge: it reads files, opens the ledger (migrated to head) and runs one transaction
per statement. ``run`` takes canonical statement JSON (what ``cvhub map statement`` prints) or a
raw bank file: camt.052/053/054 and MT940/942 detected as ``cvhub map statement`` detects them
(an MT940 starting ``{1:`` is not JSON), any profile with ``--profile``; those go through
``mappings.statements``, imported lazily inside the command (the engine itself never imports
mappings). Heavy imports
happen inside the commands so ``cvhub --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.lexical import iso_date

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Reconciliation and the daily finance package.")


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def looks_like_json(raw: bytes) -> bool:
    """Whether a statement file is canonical statement JSON rather than a bank file: its first
    non-blank byte opens a list, or an object whose first token is a key or its end. An MT940
    message also starts with ``{`` (``{1:F01...}``), so ``{`` alone decides nothing."""
    text = raw[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        return True
    return text.startswith(b"{") and text[1:].lstrip()[:1] in (b'"', b"}")


def _read_statements(path: Path, fmt: str, profile: str | None) -> list[Any]:
    from ledger.recon.statement_json import StatementJsonError, load_statements

    raw = path.read_bytes()
    if fmt == "json" or (fmt == "auto" and profile is None and looks_like_json(raw)):
        try:
            return load_statements(raw, str(path))
        except StatementJsonError as e:
            _fail(str(e))
    return _parse_bank_file(path, raw, profile)


def _parse_bank_file(path: Path, raw: bytes, profile: str | None) -> list[Any]:
    """A raw bank statement (camt.05x, MT940/942 detected as ``cvhub map statement`` does, or any
    format with ``--profile``) through ``mappings.statements``, imported here only: the CLI is
    the edge, the engine never imports mappings."""
    try:
        from mappings.statements import parse_statements_with_rejects
    except ImportError:
        _fail(f"{path}: not canonical statement JSON, and no mappings parser is installed; "
              "convert it first with `cvhub map statement`")
    try:
        statements, rejected = parse_statements_with_rejects(raw, source=path.name, profile=profile)
    except Exception as e:  # the mappings error names file/line/field; show it as one line
        _fail(f"{path}: {e}")
        return []
    if rejected:
        first = rejected[0]
        typer.echo(f"warning: {path}: {len(rejected)} row(s) rejected and not reconciled (first: line "
                   f"{first.line} {first.reason}: {first.message}); see `cvhub map statement`", err=True)
    return statements


@app.command("run")
def run(
    *,
    statement: Annotated[Path, typer.Option(
        "--statement", exists=True, dir_okay=False,
        help="Canonical statement JSON (or a raw bank file, see --format).")],
    db: Annotated[str | None, typer.Option(
        "--db", help="Ledger database URL (default: CVHUB_DB_URL or SQLite).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="json | auto (JSON, else a bank file detected as `map statement` does).")] = "auto",
    profile: Annotated[str | None, typer.Option(
        "--profile", help="Bank statement profile (as for `cvhub map statement`; CSV needs one).")] = None,
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
    if fmt == "json" and profile is not None:
        _fail("--profile names a bank format: not with --format json")
    statements = _read_statements(statement, fmt, profile)
    try:
        cfg = MatchConfig(window_before_days=window_before, window_after_days=window_after)
        day = iso_date(as_of) if as_of else None
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
        business_date = iso_date(day)
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
