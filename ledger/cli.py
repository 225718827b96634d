"""``cvhub ledger``: apply command files, verify, show a voucher's piece tree, export the journal.

A thin shell over ``ledger.api``: parses arguments, prints results, sets the exit code. Heavy
imports happen inside the commands so ``cvhub --help`` stays fast. ``--db`` defaults to
``Settings.from_env().db_url`` (``CVHUB_DB_URL`` overrides the SQLite file under the data dir).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)

DB_HELP = "Ledger database URL (default: CVHUB_DB_URL, else SQLite under the data directory)."
BATCH = 1000
# The other stores' checks for ``verify`` (db option, ledger engine) -> StoreChecks. Set by the
# ``cvhub`` command, the edge that may import connectors and flows; this package never does.
STORE_CHECKS: Callable[[str | None, Any], Sequence[Any]] | None = None


def _open(db: str | None) -> Any:
    from ledger.api import Ledger

    return Ledger.open(db)


@app.command()
def apply(
    file: Path = typer.Argument(..., help="JSON-lines file of commands ('-' for stdin)."),  # noqa: B008
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Apply the commands in FILE in order; print one JSON result per line; exit 0 iff all ok/exists."""
    from ledger.chain import canonical_json
    from ledger.command_text import DuplicateField, loads_strict

    fh = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
    led = _open(db)
    all_ok = True
    try:
        pending: list[tuple[int, Any]] = []

        def run() -> None:
            nonlocal all_ok
            if not pending:
                return
            results = led.apply([c for _, c in pending])
            for r in results:
                all_ok &= r.ok
                typer.echo(canonical_json(r.to_json()))
            pending.clear()

        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                cmd = loads_strict(line)
            except DuplicateField as e:
                run()  # keep output in input order
                all_ok = False
                typer.echo(
                    canonical_json(
                        {
                            "key": None,
                            "result": e.code,
                            "data": {"line": lineno, "field": e.field},
                            "detail": f"{file}:{lineno}: {e}: nothing applied from this line",
                        }
                    )
                )
                continue
            except ValueError as e:
                run()  # keep output in input order
                all_ok = False
                typer.echo(
                    canonical_json(
                        {
                            "key": None,
                            "result": "malformed_json",
                            "data": {"line": lineno},
                            "detail": f"{file}:{lineno}: not valid JSON: {e}",
                        }
                    )
                )
                continue
            pending.append((lineno, cmd))
            if len(pending) >= BATCH:
                run()
        run()
    finally:
        led.close()
        if fh is not sys.stdin:
            fh.close()
    raise typer.Exit(0 if all_ok else 1)


@app.command()
def verify(
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    journal: Path | None = typer.Option(  # noqa: B008
        None,
        "--journal",
        help="Check an exported journal file offline instead of a database.",
    ),
    replay: bool = typer.Option(
        False, "--replay", help="With --journal: also re-apply every command and compare."
    ),
    ledger_only: bool = typer.Option(
        False, "--ledger-only", help="Skip the other stores derived from the journal (recon, registry...)."
    ),
) -> None:
    """Check the hash chain, the state against the journal replayed, every invariant and the stores
    derived from the journal; one-line summary, non-zero exit on the first violation."""
    from ledger.verify import verify_journal_file

    if journal is not None:
        report = verify_journal_file(journal, replay=replay)
    else:
        led = _open(db)
        try:
            stores = () if ledger_only or STORE_CHECKS is None else STORE_CHECKS(db, led.engine)
            report = led.verify(stores=stores)
        finally:
            led.close()
    typer.echo(report.summary)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def show(
    voucher_no: str = typer.Argument(..., help="Voucher number."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """The voucher's piece tree: holders, states, amounts."""
    from rich.console import Console
    from rich.tree import Tree
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ledger.models import FinancingRow, InstructionRow, PartyRow, PieceRow, VoucherRow
    from ledger.money import to_decimal_text

    led = _open(db)
    try:
        with Session(led.read_engine) as s:
            v = s.get(VoucherRow, voucher_no)
            if v is None:
                typer.echo(f"unknown voucher {voucher_no}", err=True)
                raise typer.Exit(1)
            pieces = list(s.scalars(select(PieceRow).where(PieceRow.voucher_no == voucher_no)))
            names = {
                p.uscc: p.name
                for p in s.scalars(
                    select(PartyRow).where(
                        PartyRow.uscc.in_({p.holder_uscc for p in pieces} | {v.obligor_uscc})
                    )
                )
            }
            fins = {
                f.piece_no: f
                for f in s.scalars(
                    select(FinancingRow).where(
                        FinancingRow.piece_no.in_([p.piece_no for p in pieces]),
                        FinancingRow.state != "rejected",
                    )
                )
            }
            instr = {
                i.piece_no: i
                for i in s.scalars(
                    select(InstructionRow).where(
                        InstructionRow.voucher_no == voucher_no, InstructionRow.status != "superseded"
                    )
                )
            }

            def amt(m: int) -> str:
                return f"{to_decimal_text(m, v.currency)} {v.currency}"

            tree = Tree(
                f"[bold]{v.voucher_no}[/bold] {amt(v.face_minor)} {v.state}; obligor "
                f"{names.get(v.obligor_uscc, '')} {v.obligor_uscc}; issued {v.issue_date}, maturity "
                f"{v.maturity_date} (due {v.due_date}); settled {amt(v.settled_minor)}"
            )
            kids: dict[str | None, list[PieceRow]] = {}
            for p in sorted(pieces, key=lambda p: int(p.piece_no.rsplit("-", 1)[1])):
                kids.setdefault(p.parent_no, []).append(p)

            def add(node: Tree, parent: str | None) -> None:
                for p in kids.get(parent, []):
                    extra = ""
                    if p.piece_no in fins:
                        f = fins[p.piece_no]
                        extra += f"; financing {f.financing_id} {f.state} reg {f.registration_no or '-'}"
                    if p.piece_no in instr:
                        i = instr[p.piece_no]
                        extra += f"; instruction {i.instruction_id} {i.status}"
                    child = node.add(
                        f"{p.piece_no} {amt(p.amount_minor)} ({p.state}) holder "
                        f"{names.get(p.holder_uscc, '')} {p.holder_uscc}{extra}"
                    )
                    add(child, p.piece_no)

            add(tree, None)
            Console().print(tree)
    finally:
        led.close()


@app.command()
def export(
    fmt: str = typer.Option("jsonl", "--format", help="Only jsonl: one journal entry per line."),
    out: Path | None = typer.Option(None, "--out", help="Output file (default stdout)."),  # noqa: B008
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Write the journal (entries with postings and hashes), verifiable offline with `verify --journal`."""
    if fmt != "jsonl":
        typer.echo(f"unsupported format {fmt!r}: only jsonl", err=True)
        raise typer.Exit(2)
    from ledger.export import export_journal

    led = _open(db)
    try:
        if out is None:
            n = export_journal(led.read_engine, sys.stdout)
        else:
            with out.open("w", encoding="utf-8") as fh:
                n = export_journal(led.read_engine, fh)
            typer.echo(f"exported {n} entries to {out}", err=True)
    finally:
        led.close()
