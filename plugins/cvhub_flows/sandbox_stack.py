"""Every sandbox on loopback at once, wired to each other, with the Airflow connections that reach them.

Used by the demo (``plugins.cvhub_flows.demo``), the end-to-end tests and ``bench/e2e.py`` — never
by the flows themselves, which only know connection ids. ``SandboxStack.start()`` brings up the SRM,
the registry provider, the treasury, bank A (SOAP financing + SFTP files, its statements showing the
treasury's executed payments), bank B (signed REST financing + MT940 statements over SFTP) and the
finance package SFTP server, all on 127.0.0.1 with ephemeral ports and one generated client key.
``connections()`` returns the ``AIRFLOW_CONN_*`` JSON for each connection id (the same shape as
``examples/connections.json``); ``export()`` puts them into this process's environment, which is
where Airflow's environment secrets backend reads them. Every sandbox gets the stack's one business
clock (``canonical.clock.SettableClock``): statements, registration numbers, decisions, value dates and
audit stamps follow it, and the caller moves it (``clock.set_day(maturity)``). Only security timestamps
(WS-Security, request-signature windows, TLS certificates) are checked against real time.

Sandbox credentials are throwaway values generated per start; they exist only in this process and
in the connections it exports.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from canonical.clock import SYSTEM_CLOCK, SettableClock, today


@dataclass
class SandboxStack:
    """All sandboxes; ``root`` keeps their SFTP directories (persistent across runs if reused)."""

    root: Path
    clock: SettableClock
    obligor_accounts: set[str] = field(default_factory=set)
    srm: Any = None
    registry: Any = None
    treasury: Any = None
    bank_a: Any = None
    bank_b: Any = None
    sftp: dict[str, Any] = field(default_factory=dict)
    sftp_info: dict[str, Any] = field(default_factory=dict)
    _client_key: str = ""

    def start(self) -> SandboxStack:
        from sandbox.bank_a import start_bank_a_sandbox
        from sandbox.bank_b import start_bank_b
        from sandbox.registry import RegistrySandbox
        from sandbox.sftp_server import SftpSandbox, generate_ed25519_key
        from sandbox.srm import SrmSandbox
        from sandbox.treasury import start_treasury_sandbox

        self.root.mkdir(parents=True, exist_ok=True)
        self._client_key, public = generate_ed25519_key()
        try:
            for name in ("bank_a", "bank_b", "finance"):
                box = SftpSandbox(self.root / f"sftp_{name}", authorized_key=public)
                self.sftp_info[name] = box.start()
                self.sftp[name] = box
            (self.root / "sftp_finance" / "finance").mkdir(parents=True, exist_ok=True)
            (self.root / "sftp_bank_b" / "statements").mkdir(parents=True, exist_ok=True)
            self.srm = SrmSandbox(clock=self.clock).start()
            self.registry = RegistrySandbox(clock=self.clock).start()
            # Business time follows the stack's clock; WS-Security timestamps are checked against real
            # time (the clients stamp their messages with the real clock).
            self.treasury = start_treasury_sandbox(clock=self.clock, security_clock=SYSTEM_CLOCK)
            self.bank_a = start_bank_a_sandbox(
                sftp_root=self.root / "sftp_bank_a", clock=self.clock, security_clock=SYSTEM_CLOCK,
                linked_engines=[self.treasury.engine], accounts=set(self.obligor_accounts) or None)
            box_b = self.sftp["bank_b"]
            self.bank_b = start_bank_b(clock=self.clock,
                                       deliver=lambda name, data: box_b.put_file("statements", name, data))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for s in (self.bank_b, self.bank_a, self.treasury, self.registry, self.srm, *self.sftp.values()):
            if s is not None:
                try:
                    s.stop()
                except Exception:  # noqa: S112 - best effort: stop the others too
                    continue

    def __enter__(self) -> SandboxStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- connections ---------------------------------------------------------------------------
    def _sftp_conn(self, name: str, **extra: Any) -> dict[str, Any]:
        info = self.sftp_info[name]
        return {"conn_type": "sftp", "host": info.host, "port": info.port, "login": info.username,
                "extra": {"private_key": self._client_key, "host_key": info.host_key_line, **extra}}

    def connections(self) -> dict[str, dict[str, Any]]:
        """Connection id -> Airflow connection JSON, for every connection the flows use."""
        return {
            "cvhub_srm": {"conn_type": "http", "host": self.srm.url, "password": self.srm.token,
                          "extra": {"auth": "bearer"}},
            "cvhub_registry": {"conn_type": "http", "host": self.registry.url,
                               "password": self.registry.api_key,
                               "extra": {"adapter": "rest", "auth": "api_key",
                                         "api_key_header": "X-Api-Key"}},
            "cvhub_treasury": {"conn_type": "http", "host": self.treasury.url,
                               "login": self.treasury.username, "password": self.treasury.password,
                               "extra": {"password_digest": True}},
            "cvhub_bank_a": {"conn_type": "http", "host": self.bank_a.url, "login": self.bank_a.username,
                             "password": self.bank_a.password, "extra": {"password_digest": True}},
            "cvhub_bank_a_sftp": self._sftp_conn("bank_a"),
            "cvhub_bank_b": {"conn_type": "http", "host": self.bank_b.url, "login": self.bank_b.key_id,
                             "password": self.bank_b.secret, "extra": {"auth": "hmac"}},
            "cvhub_bank_b_sftp": self._sftp_conn("bank_b"),
            "cvhub_finance_sftp": self._sftp_conn("finance", outbox="finance"),
        }

    def export(self, environ: dict[str, str] | None = None) -> dict[str, str]:
        """Write ``AIRFLOW_CONN_<ID>`` for every connection into ``environ`` (default os.environ)."""
        env = os.environ if environ is None else environ
        values = {f"AIRFLOW_CONN_{cid.upper()}": json.dumps(c) for cid, c in self.connections().items()}
        env.update(values)
        return values

    # --- end of day ----------------------------------------------------------------------------
    def close_day(self, day: date) -> dict[str, int]:
        """Let the banks publish their statements (bank A camt.053, bank B MT940) over SFTP: bank A
        for everything executed so far, bank B one statement per account for each day up to ``day``
        that has bookings (the financing proceeds of the issue day, the clearing of the maturity)."""
        self.bank_a.bank.tick()
        a = self.bank_a.write_statements()
        b = self.bank_b.close_days_through(day)
        return {"bank_a": len(a), "bank_b": len(b)}


def main(argv: list[str] | None = None) -> int:
    """``python -m plugins.cvhub_flows.sandbox_stack --connections FILE``: start every sandbox, write
    the live connections (the ``examples/connections.json`` shape, mode 0600: it holds the sandbox
    credentials) for Airflow's LocalFilesystemBackend, and run until interrupted."""
    import argparse
    import signal
    import time

    from cvhub.settings import Settings
    from sandbox.rest_parties import OBLIGOR

    p = argparse.ArgumentParser(prog="python -m plugins.cvhub_flows.sandbox_stack")
    p.add_argument("--connections", type=Path, required=True, help="Where to write the connections JSON.")
    p.add_argument("--day", type=date.fromisoformat, default=None, help="The sandboxes' business day.")
    args = p.parse_args(argv)
    settings = Settings.from_env()
    clock = SettableClock.on_day(args.day or today(settings.clock))
    stack = SandboxStack(settings.data_dir / "sandbox", clock, obligor_accounts={OBLIGOR.account})
    with stack:
        fd = os.open(args.connections, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(stack.connections(), f, indent=2)
        print(f"sandboxes up; connections in {args.connections} (Ctrl-C or SIGTERM to stop)")

        def _stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
