"""``cvhub sandbox``: start every sandbox on loopback and say how to reach it.

``cvhub sandbox up`` starts the REST sandboxes (SRM, registry, Bank B), the SFTP server that
serves the banks' and the ERP's files (``sandbox.sftp_server``), and the SOAP sandboxes
(treasury, Bank A) when their modules are present; prints every endpoint, credential and the SFTP
host key fingerprint; optionally writes them as JSON (``--json FILE``, mode 0600: it holds the
sandbox credentials) for other tools; runs until Ctrl-C (or ``--duration``).

``start_all(workdir)`` is the same thing as a function (the demo and tests use it); it returns a
``SandboxFleet`` whose ``endpoints()`` is the JSON document and ``stop()`` stops everything.
Light at import: servers are imported inside functions. Loopback only, never in production.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from canonical.clock import SYSTEM_CLOCK, Clock

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Run the sandbox stand-ins of every external system (loopback only).",
)

log = logging.getLogger("cvhub.sandbox")


@dataclass
class SandboxFleet:
    """Running sandboxes: ``systems`` (name -> endpoint description), ``notes`` (what was not wired)."""

    workdir: Path
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    handles: dict[str, Any] = field(default_factory=dict)
    _stops: list[Callable[[], None]] = field(default_factory=list)
    _ticker_stop: threading.Event = field(default_factory=threading.Event)

    def endpoints(self) -> dict[str, Any]:
        return {"workdir": str(self.workdir), "systems": self.systems, "notes": self.notes}

    def stop(self) -> None:
        self._ticker_stop.set()
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception as e:  # keep stopping the others
                log.warning("stopping a sandbox failed: %s", e)
        self._stops.clear()

    def __enter__(self) -> SandboxFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _rest_entry(box: Any) -> dict[str, Any]:
    return {
        "kind": "rest",
        "url": box.url,
        "openapi": box.url + "/openapi.json",
        "credentials": box.credentials(),
        "faults": box.url + "/_sandbox/faults",
        "ca_bundle": box.ca_bundle,
    }


def _optional(module: str) -> Any | None:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (e.name == module or module.startswith(e.name + ".")):
            return None
        raise


def start_all(
    workdir: Path, *, statement_every: float | None = 60.0, decision_delay: float = 2.0, https: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> SandboxFleet:
    """Start every available sandbox with its state under ``workdir``; see the module docstring.

    statement_every: seconds between Bank B day closes (statements to SFTP); None: only on demand
    via ``fleet.handles["bank_b"].close_day()`` or ``POST <bank_b>/_sandbox/close-day``.
    https: serve the REST sandboxes over TLS, each from its own private CA
    (``<workdir>/tls/<system>/sandbox-ca.pem``, the ``ca_bundle`` of its endpoint description).
    clock: the one business clock every sandbox follows (``canonical.clock``; ``cvhub sandbox up``
    passes the one ``CVHUB_CLOCK`` names, else the system clock). WS-Security is checked in real time.
    """
    from sandbox.bank_b import BankBSandbox
    from sandbox.registry import RegistrySandbox
    from sandbox.srm import SrmSandbox

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sftp_root = workdir / "sftp"
    sftp_root.mkdir(exist_ok=True)
    fleet = SandboxFleet(workdir)
    try:
        tls_dir = workdir / "tls" if https else None
        srm = SrmSandbox(tls_dir=tls_dir / "srm" if tls_dir else None, clock=clock)
        srm.seed(25)
        srm.start()
        fleet._stops.append(srm.stop)
        fleet.handles["srm"] = srm
        fleet.systems["srm"] = _rest_entry(srm)

        registry = RegistrySandbox(tls_dir=tls_dir / "registry" if tls_dir else None, clock=clock)
        registry.start()
        fleet._stops.append(registry.stop)
        fleet.handles["registry"] = registry
        fleet.systems["registry"] = _rest_entry(registry)

        sftp_mod = _optional("sandbox.sftp_server")
        deliver: Callable[[str, bytes], object] | None = None
        if sftp_mod is not None:
            private_pem, public_line = sftp_mod.generate_ed25519_key()
            key_file = workdir / "sftp_client_ed25519"
            key_file.write_text(private_pem)
            key_file.chmod(0o600)
            box = sftp_mod.SftpSandbox(sftp_root, authorized_key=public_line)
            info = box.start()
            fleet._stops.append(box.stop)
            fleet.handles["sftp"] = box
            fleet.systems["sftp"] = {
                "kind": "sftp",
                "host": info.host,
                "port": info.port,
                "username": info.username,
                "private_key_file": str(key_file),
                "host_key": info.host_key_line,
                "fingerprint": info.fingerprint,
                "root": str(info.root),
            }
            deliver = functools.partial(box.put_file, "bank_b/statements")
        else:
            fleet.notes.append("sandbox.sftp_server not present: Bank B statements go to a local directory")

        bank_b = BankBSandbox(
            tls_dir=tls_dir / "bank_b" if tls_dir else None,
            decision_delay=decision_delay,
            disbursement_delay=decision_delay,
            deliver=deliver,
            statement_dir=sftp_root / "bank_b" / "statements",
            clock=clock,
        )
        bank_b.start()
        fleet._stops.append(bank_b.stop)
        fleet.handles["bank_b"] = bank_b
        fleet.systems["bank_b"] = {
            **_rest_entry(bank_b),
            "statements": {
                "sftp_dir": "bank_b/statements",
                "formats": ["mt940", "csv"],
                "profiles": ["mt940", "csv-cn-bank"],
            },
        }

        treasury_mod = _optional("sandbox.treasury")
        engines = []
        if treasury_mod is not None:
            treasury = treasury_mod.start_treasury_sandbox(clock=clock, security_clock=SYSTEM_CLOCK)
            fleet._stops.append(treasury.stop)
            fleet.handles["treasury"] = treasury
            engines.append(treasury.engine)
            fleet.systems["treasury"] = {
                "kind": "soap",
                "url": treasury.url,
                "wsdl": treasury.wsdl_url,
                "credentials": {"username": treasury.username, "password": treasury.password},
            }
        else:
            fleet.notes.append("sandbox.treasury not present: no treasury sandbox")

        bank_a_mod = _optional("sandbox.bank_a")
        if bank_a_mod is not None:
            bank_a = bank_a_mod.start_bank_a_sandbox(sftp_root=sftp_root / "bank_a", linked_engines=engines,
                                                     clock=clock, security_clock=SYSTEM_CLOCK)
            fleet._stops.append(bank_a.stop)
            fleet.handles["bank_a"] = bank_a
            fleet.systems["bank_a"] = {
                "kind": "soap",
                "url": bank_a.url,
                "wsdl": bank_a.wsdl_url,
                "credentials": {"username": bank_a.username, "password": bank_a.password},
                "sftp_dir": "bank_a",
            }
        else:
            fleet.notes.append("sandbox.bank_a not present: no bank A sandbox")

        if statement_every:

            def close_days() -> None:
                while not fleet._ticker_stop.wait(statement_every):
                    try:
                        bank_b.close_day()
                    except Exception as e:  # a sandbox ticker must not die silently
                        log.warning("bank_b close_day failed: %s", e)

            threading.Thread(target=close_days, name="bank_b-statements", daemon=True).start()
    except BaseException:
        fleet.stop()
        raise
    return fleet


def _print(fleet: SandboxFleet) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=240)
    table = Table(title=f"cvhub sandboxes (state under {fleet.workdir})")
    for col in ("system", "kind", "endpoint", "credentials / host key"):
        table.add_column(col, overflow="fold")
    for name, s in fleet.systems.items():
        if s["kind"] == "sftp":
            endpoint = f"sftp://{s['username']}@{s['host']}:{s['port']}/"
            creds = f"key {s['private_key_file']}\nhost key {s['fingerprint']}\n{s['host_key']}"
        else:
            endpoint = s["url"] + (f"\nWSDL {s['wsdl']}" if "wsdl" in s else f"\nOpenAPI {s['openapi']}")
            creds = "\n".join(f"{k}: {v}" for k, v in s["credentials"].items())
            if s.get("ca_bundle"):
                creds += f"\nCA bundle: {s['ca_bundle']}"
        table.add_row(name, s["kind"], endpoint, creds)
    console.print(table)
    for note in fleet.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


@app.command()
def up(
    workdir: Annotated[Path | None, typer.Option(help="Sandbox state (default: <data_dir>/sandbox).")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the endpoints as JSON (mode 0600).")
    ] = None,
    statement_every: float = typer.Option(
        60.0, "--statement-every", help="Seconds between Bank B statement runs (0: never)."
    ),
    duration: float = typer.Option(
        None, "--duration", help="Stop after this many seconds (default: Ctrl-C)."
    ),
    https: bool = typer.Option(False, "--https", help="Serve the REST sandboxes over TLS (private CA)."),
) -> None:
    """Start every sandbox, print endpoints and credentials, run until Ctrl-C."""
    from cvhub.settings import Settings

    settings = Settings.from_env()
    if workdir is None:
        workdir = settings.data_dir / "sandbox"
    fleet = start_all(workdir, statement_every=statement_every or None, https=https, clock=settings.clock)
    try:
        _print(fleet)
        if json_file is not None:
            json_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(json_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(fleet.endpoints(), f, ensure_ascii=False, indent=2)
            typer.echo(f"endpoints written to {json_file}")
        typer.echo("sandboxes running; Ctrl-C to stop" if duration is None else f"running for {duration}s")
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1 if deadline is not None else 0.5)
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        fleet.stop()


@app.command()
def openapi(
    system: str = typer.Argument(..., help="srm, registry or bank_b"),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Print a REST sandbox's OpenAPI document (no server needed)."""
    import importlib

    classes = {
        "srm": ("sandbox.srm", "SrmSandbox"),
        "registry": ("sandbox.registry", "RegistrySandbox"),
        "bank_b": ("sandbox.bank_b", "BankBSandbox"),
    }
    if system not in classes:
        typer.echo(f"error: unknown REST sandbox {system!r}; one of {', '.join(classes)}", err=True)
        raise typer.Exit(1)
    module, name = classes[system]
    doc = json.dumps(
        getattr(importlib.import_module(module), name)().app.openapi(), ensure_ascii=False, indent=2
    )
    if output:
        output.write_text(doc + "\n", encoding="utf-8")
    else:
        typer.echo(doc)
