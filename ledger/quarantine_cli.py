"""``cvhub quarantine list|show|replay|discard``: the operator's view of failed items.

``replay`` looks the item's flow up in the replay handlers that the flows register
(``plugins.cvhub_flows.replay.HANDLERS``, imported only inside that command, by name, so the ledger
package itself never depends on the flows); everything else reads and writes the quarantine table
through ``ledger.quarantine``. The database is ``--db`` or the settings' ``db_url``. Output is one
JSON object per line (``list``) or one JSON document (``show``), errors one line with exit 1.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer

app = typer.Typer(no_args_is_help=True, help="Failed items: list, show, replay, discard.")

_IDS_ARG = typer.Argument(None, help="Item ids (default: every open item).")
_DB_HELP = "Ledger database URL (default: CVHUB_DB_URL or the SQLite file in the data directory)."


def _session(db: str | None) -> Any:
    from sqlalchemy.orm import Session

    from cvhub.settings import Settings
    from ledger.db import make_engine

    url = db or Settings.from_env().db_url
    return Session(make_engine(url))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command("list")
def list_cmd(
    status: str = typer.Option("open", help="open | replayed | discarded | all"),
    flow: str = typer.Option(None, help="Only items of this flow."),
    limit: int = typer.Option(100, min=1),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """List quarantined items (newest first), one JSON object per line."""
    from ledger import quarantine

    with _session(db) as s:
        try:
            items = quarantine.list_items(s, status=None if status == "all" else status, flow=flow,
                                          limit=limit)
        except ValueError as e:
            _fail(f"bad --status {status!r}: {e}")
        for item in items:
            d = item.as_dict()
            typer.echo(json.dumps({k: d[k] for k in ("id", "flow", "item_ref", "status", "reason_code",
                                                     "message", "occurrences", "created_at")},
                                  ensure_ascii=False))


@app.command()
def show(
    item_id: int = typer.Argument(..., help="Quarantine item id."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Show one item with its context and raw bytes."""
    from ledger import quarantine

    with _session(db) as s:
        try:
            item = quarantine.get(s, item_id)
        except quarantine.QuarantineError as e:
            _fail(str(e))
        typer.echo(json.dumps(item.as_dict(with_raw=True), ensure_ascii=False, indent=2))


@app.command()
def replay(
    item_ids: list[int] | None = _IDS_ARG,
    flow: str = typer.Option(None, help="With no ids: only open items of this flow."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Replay items through their flow after the cause is fixed; a replayed item is not replayed again."""
    import importlib
    import os

    from cvhub.settings import Settings

    if db:
        os.environ["CVHUB_DB_URL"] = db  # the flows' replay handlers read their settings from it
    # by name, at run time: the ledger package never depends on the flows
    replay_items = importlib.import_module("plugins.cvhub_flows.replay").replay_items
    settings = Settings.from_env()
    counts = replay_items(settings, item_ids=list(item_ids or []), flow=flow, at=settings.clock())
    typer.echo(json.dumps(counts, ensure_ascii=False, sort_keys=True))
    if counts["failed"]:
        raise typer.Exit(1)


@app.command()
def discard(
    item_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why it must not be processed (kept with the item)."),
    db: str = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Discard an open item (it will not be replayed)."""
    from cvhub.settings import Settings
    from ledger import quarantine

    with _session(db) as s:
        try:
            quarantine.discard(s, item_id, reason=reason, at=Settings.from_env().clock())
        except quarantine.QuarantineError as e:
            _fail(str(e))
        s.commit()
        typer.echo(json.dumps({"id": item_id, "result": "discarded"}))
