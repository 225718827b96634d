"""``cvhub map``: run a mapping on a file and print the canonical result (JSON) or the rendered file.

Thin shell over ``mappings``: reads the file named on the command line (the only I/O, and it is
the CLI's, not the mappings'), prints JSON with amounts as decimal strings, and exits non-zero
with the specific error (code, file, line, field) on bad input. Heavy imports stay inside commands.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Map external formats onto the canonical model.")


def _fail(e: Exception) -> typer.Exit:
    from mappings.errors import MappingError

    if isinstance(e, MappingError):
        typer.echo(json.dumps(e.as_dict(), ensure_ascii=False), err=True)
        typer.echo(f"error: {e}", err=True)
    else:
        typer.echo(f"error: {e}", err=True)
    return typer.Exit(2)


@app.command("statement")
def statement(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    profile: Annotated[str | None, typer.Option("--profile", help="Profile name (CSV needs one).")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify",
                                            help="Skip acceptance checks (diagnosis only).")] = False,
) -> None:
    """Detect the format (or use --profile) and print the canonical statements as JSON."""
    from mappings.canonical_json import to_json
    from mappings.errors import MappingError
    from mappings.statements import iter_statements

    out: list[object] = []
    rejected: list[object] = []
    try:
        with file.open("rb") as fh:
            for reader in iter_statements(fh, source=file.name, profile=profile, verify=not no_verify):
                out.append(to_json(reader.collect()))
                rejected.extend(to_json(r) for r in reader.rejected)
    except MappingError as e:
        raise _fail(e) from e
    json.dump({"statements": out, "rejected": rejected}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    if rejected:
        raise typer.Exit(3)


@app.command("pain002")
def pain002(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Print the statuses of a pain.002 report as JSON."""
    from mappings.canonical_json import to_json
    from mappings.errors import MappingError
    from mappings.pain002 import parse_pain002

    try:
        statuses = parse_pain002(file.read_bytes(), source=file.name)
    except MappingError as e:
        raise _fail(e) from e
    json.dump({"statuses": to_json(statuses)}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


@app.command("pain001")
def pain001(
    instructions: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                                 help="JSON: {initiating_party, created_at, instructions}")],
    version: Annotated[str, typer.Option("--version", help="03 or 09")] = "09",
) -> None:
    """Render payment instructions (canonical JSON) as a pain.001 validated against the official XSD."""
    from mappings.canonical_json import instruction_from_json
    from mappings.errors import FieldError, MappingError
    from mappings.pain001 import render_pain001

    try:
        try:
            doc = json.loads(instructions.read_bytes())
        except json.JSONDecodeError as e:
            raise FieldError(f"not JSON: {e.msg}", source=instructions.name, line=e.lineno,
                             code="malformed_json") from e
        items = doc.get("instructions") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise FieldError("expected a list of instructions", source=instructions.name,
                             field="instructions", code="invalid_field")
        party = doc.get("initiating_party", {}) if isinstance(doc, dict) else {}
        created = doc.get("created_at") if isinstance(doc, dict) else None
        from cvhub.settings import Settings
        from ledger.canonical import Party

        if version not in ("03", "09"):
            raise FieldError(f"version must be 03 or 09, not {version!r}", field="version",
                             code="invalid_field")
        data = render_pain001(
            [instruction_from_json(x, index=n) for n, x in enumerate(items)],
            version="03" if version == "03" else "09",
            initiating_party=Party(name=party.get("name"), uscc=party.get("uscc")),
            created_at=(datetime.fromisoformat(created) if created
                        else Settings.from_env().clock().replace(microsecond=0)),
        )
    except MappingError as e:
        raise _fail(e) from e
    sys.stdout.buffer.write(data)
