"""``cvhub registry``: the operator's side of the manual registry queue (list, show, confirm, reject).

The registry (中登网) has no public API; packets filed by ``ManualRegistry`` wait here until an
operator has filed them on the registry's website and enters the registration number. Light at
import: SQLAlchemy and rich load inside the commands. Never prints a secret (packets hold none).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from connectors.registry.manual import ManualRegistry

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Registry (中登网) manual queue: list, show, confirm, reject packets.",
)

DB_OPTION = typer.Option(None, "--db", help="Queue database URL (default: <data_dir>/connectors.sqlite).")


@contextmanager
def _registry(db: str | None) -> Iterator[ManualRegistry]:
    from connectors.registry.manual import ManualRegistry

    queue = ManualRegistry(db)
    try:
        yield queue
    finally:
        queue.close()


def _fail(e: Exception) -> typer.Exit:
    typer.echo(f"error: {e}", err=True)
    return typer.Exit(1)


@app.command("list")
def list_packets(
    status: str = typer.Option(None, "--status", help="PENDING, CONFIRMED or REJECTED."), db: str = DB_OPTION
) -> None:
    """List packets (oldest first)."""
    from rich.console import Console
    from rich.table import Table

    with _registry(db) as queue:
        rows = queue.list_packets(status)
    table = Table(title=f"registry packets ({len(rows)})")
    for col in (
        "packet",
        "request no",
        "operation",
        "status",
        "grantor",
        "voucher",
        "registration no",
        "filed",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["packet_id"],
            r["request_no"],
            r["operation"],
            r["status"],
            r["grantor_uscc"] or "",
            r["voucher_id"] or "",
            r["registration_no"] or r["target_registration_no"] or "",
            str(r["created_at"])[:19],
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped or captured: never truncate packet ids
    console.print(table)


@app.command()
def show(packet_id: str, db: str = DB_OPTION) -> None:
    """Show one packet: everything the operator needs to file it on the registry."""
    from connectors.errors import ConnectorError

    try:
        with _registry(db) as queue:
            row = queue.show(packet_id)
    except ConnectorError as e:
        raise _fail(e) from e
    payload = json.loads(row.pop("payload"))
    for k, v in row.items():
        typer.echo(f"{k:24} {'' if v is None else v}")
    typer.echo("packet:")
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@app.command()
def confirm(
    packet_id: str,
    registration_no: str,
    operator: str = typer.Option("operator", "--operator", help="Who filed it (kept with the packet)."),
    note: str = typer.Option(None, "--note"),
    db: str = DB_OPTION,
) -> None:
    """Complete a packet with the registration number (登记证明编号) the registry issued."""
    from connectors.errors import ConnectorError

    try:
        with _registry(db) as queue:
            reg = queue.confirm(packet_id, registration_no, operator=operator, note=note)
    except ConnectorError as e:
        raise _fail(e) from e
    typer.echo(f"{reg.packet_id} {reg.status} {reg.registration_no}")


@app.command()
def reject(
    packet_id: str, reason: str, operator: str = typer.Option("operator", "--operator"), db: str = DB_OPTION
) -> None:
    """Record that the registry refused the packet; financing will not proceed."""
    from connectors.errors import ConnectorError

    try:
        with _registry(db) as queue:
            reg = queue.reject(packet_id, reason, operator=operator)
    except ConnectorError as e:
        raise _fail(e) from e
    typer.echo(f"{reg.packet_id} {reg.status}")
