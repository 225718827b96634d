"""``cvhub ledger``: apply command files, verify, show a voucher's piece tree, export the journal.

A thin shell over ``ledger.api``: parses arguments, prints results, sets the exit code. Heavy
imports happen inside the commands so ``cvhub --help`` stays fast. ``--db`` defaults to
``Settings.from_env().db_url`` (``CVHUB_DB_URL`` overrides the SQLite file under the data dir).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

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


#: A command line longer than this is refused (``line_too_long``) without being held in memory.
MAX_LINE_BYTES = 1024 * 1024


def _lines(fh: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw line without its end) per physical line; None for one over the limit
    (read past in chunks, never held whole)."""
    lineno = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(MAX_LINE_BYTES)
            yield lineno, None
            continue
        yield lineno, raw.rstrip(b"\r\n")


def _decode(raw: bytes, lineno: int) -> tuple[str | None, tuple[str, str, dict[str, Any]] | None]:
    """The command of one line, or the per-line refusal (code, message, data) that replaces it."""
    from ledger.command_text import DuplicateField, loads_strict

    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte order mark, as editors on Windows write it
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, ("bad_encoding", f"not UTF-8 at byte {e.start + 1}: {e.reason}", {"byte": e.start + 1})
    if not text.strip():
        return None, None
    try:
        return loads_strict(text), None
    except DuplicateField as e:
        return None, (e.code, f"{e}: nothing applied from this line", {"field": _safe_text(e.field)})
    except RecursionError:
        return None, ("too_deep", "nested too deeply to be a command", {})
    except ValueError as e:  # JSONDecodeError; also an integer literal of more than 4,300 digits
        return None, ("malformed_json", f"not valid JSON: {_safe_text(str(e))}", {})


def _safe_text(text: str) -> str:
    from ledger.lexical import FORBIDDEN

    return FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)[:200]


@app.command()
def apply(
    file: Path = typer.Argument(..., help="JSON-lines file of commands ('-' for stdin)."),  # noqa: B008
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Apply the commands in FILE in order; print one JSON result per line.

    Each line stands alone: a line that cannot be read (bad_encoding, malformed_json, too_deep,
    duplicate_field, line_too_long) or a command that is refused costs only itself. Commands are
    committed in batches of 1,000. Exit 0 iff every line is ok/exists, 1 if any was refused, 2 if
    a database error stopped the run (the lines before the batch it names are applied; applying the
    file again is safe: applied keys answer ``exists``).
    """
    from ledger.api import CommandResult
    from ledger.chain import canonical_json

    fh: BinaryIO = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    led = _open(db)
    all_ok = True
    try:
        pending: list[tuple[int, Any]] = []

        def emit(lineno: int, r: CommandResult) -> None:
            nonlocal all_ok
            all_ok &= r.ok
            out = r.to_json()
            out["line"] = lineno
            typer.echo(canonical_json(out))

        def run() -> None:
            if not pending:
                return
            cmds = [c for _, c in pending]
            try:
                results = led.apply(cmds)
            except Exception as e:
                if not _input_caused(e):
                    raise
                # Validation keeps input-made database errors out; should one still happen, it
                # rolled back the whole batch: apply its commands one by one, so that it costs
                # only the command that causes it (each is its own transaction; nothing of the
                # batch was written, so this is the same as a first try).
                results = [_apply_alone(led, c) for c in cmds]
            for (lineno, _), r in zip(pending, results, strict=True):
                emit(lineno, r)
            pending.clear()

        for lineno, raw in _lines(fh):
            if raw is None:
                run()  # keep output in input order
                emit(lineno, CommandResult(None, "line_too_long",
                                           f"{file}:{lineno}: longer than {MAX_LINE_BYTES} bytes: nothing "
                                           "applied from this line", {"line": lineno}))
                continue
            cmd, refusal = _decode(raw, lineno)
            if refusal is not None:
                code, message, data = refusal
                run()  # keep output in input order
                data = {"line": lineno, **data}
                emit(lineno, CommandResult(None, code, f"{file}:{lineno}: {message}", data))
                continue
            if cmd is None:  # a blank line
                continue
            pending.append((lineno, cmd))
            if len(pending) >= BATCH:
                run()
        run()
    except Exception as e:
        from sqlalchemy.exc import DBAPIError

        from ledger.api import LedgerBusy

        if not isinstance(e, (DBAPIError, LedgerBusy)) and _sqlstate(e) is None and not _input_caused(e):
            raise
        first = pending[0][0] if pending else None
        where = f"lines {first}-{pending[-1][0]}" if first is not None else "the batch"
        typer.echo(f"error: {where} not applied: {_safe_text(str(e).splitlines()[0])} "
                   "(earlier lines are applied; apply the file again to continue)", err=True)
        raise typer.Exit(2) from e
    finally:
        led.close()
        if fh is not sys.stdin.buffer:
            fh.close()
    raise typer.Exit(0 if all_ok else 1)


def _sqlstate(e: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLAlchemy wraps the driver's; COPY raises psycopg's own)."""
    orig = getattr(e, "orig", None)
    code = getattr(orig if orig is not None else e, "sqlstate", None)
    return code if isinstance(code, str) else None


def _input_caused(e: BaseException) -> bool:
    """A database refusal of the data itself - DB-API ``DataError`` / ``IntegrityError`` (SQLSTATE
    class 22 / 23; psycopg raises its own from COPY, even before the server sees the row) - as
    opposed to the database being unavailable, busy or broken."""
    orig = getattr(e, "orig", None)
    names = {c.__name__ for c in type(e).__mro__} | {c.__name__ for c in type(orig).__mro__}
    code = _sqlstate(e)
    return bool(names & {"DataError", "IntegrityError"}) or (code is not None and code[:2] in ("22", "23"))


def _apply_alone(led: Any, cmd: Any) -> Any:
    from ledger.api import CommandResult

    try:
        return led.apply_one(cmd)
    except Exception as e:
        if not _input_caused(e):
            raise
        key = cmd.get("key") if isinstance(cmd, dict) and isinstance(cmd.get("key"), str) else None
        orig = getattr(e, "orig", None)
        first = (str(orig if orig is not None else e).splitlines() or [""])[0]
        return CommandResult(key, "storage_error", f"the database refused this command: {_safe_text(first)}",
                             {"field": None})


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
