"""Conformance declaration of the treasury connector (``connectors.testing`` protocol).

Test glue only: builds a ``TreasuryClient`` against a running treasury sandbox and exposes the
sandbox through the kit's ``ConformanceSandbox`` protocol. Imported by tests and
``cvhub connector check``; never by production code.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from connectors.archive import Archive
from connectors.errors import NotFound
from connectors.soap import UsernameTokenConfig
from connectors.treasury.client import BatchAck, TreasuryClient

FAULTS = frozenset({"latency", "timeout", "server_error", "rate_limit", "client_error", "fault",
                    "drop_before", "drop_after", "duplicate"})


def pain001_for(serial: str) -> bytes:
    """A small, valid pain.001 that is the same bytes for the same serial (and unique per serial)."""
    from ledger.canonical import Party, PaymentInstruction
    from mappings.pain001 import render_pain001

    debtor = Party(name="Obligor Co", account="6222000011112222", agent="102100099996")
    creditor = Party(name="Supplier Co", account="6222000033334444", agent="103100000026")
    ref = serial.replace("_", "-")[:35]  # SWIFT character set has no underscore
    item = PaymentInstruction(ref, ref, 1_000_00, "CNY", date(2026, 12, 1), debtor, creditor)
    return render_pain001([item], version="09", initiating_party=Party(name="Obligor Co"),
                          created_at=datetime(2026, 11, 30, tzinfo=UTC))


class TreasurySandboxAdapter:
    """The treasury sandbox seen through the conformance kit's ``ConformanceSandbox`` protocol."""

    supported_faults: frozenset[str] = FAULTS

    def __init__(self, read_timeout: float = 0.5) -> None:
        from sandbox.treasury import start_treasury_sandbox

        self.read_timeout = read_timeout
        self.handle = start_treasury_sandbox(execution_delay=timedelta(0), tick=None)
        self._seeds = itertools.count(1)

    @property
    def url(self) -> str:
        return self.handle.url

    def __enter__(self) -> TreasurySandboxAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.stop()

    def reset(self) -> None:
        self.handle.engine.reset()
        self.handle.service.reset()

    def seed(self, count: int) -> None:
        for _ in range(count):
            serial = f"SEED-{next(self._seeds):06d}"
            self.handle.engine.accept(serial, pain001_for(serial), "09")
        self.handle.engine.advance()

    def inject(self, kind: str, *, operation: str | None = None, times: int = 1, **params: Any) -> None:
        f = self.handle.faults
        if kind == "latency":
            f.latency(float(params.get("delay", 0.05)), operation=operation, times=times)
        elif kind == "timeout":
            f.latency(float(params.get("delay", self.read_timeout * 2)), operation=operation, times=times)
        elif kind == "server_error":
            f.http_error(int(params.get("status", 503)), operation=operation, times=times)
        elif kind == "rate_limit":
            f.http_error(429, operation=operation, times=times, retry_after=params.get("retry_after", 0))
        elif kind == "client_error":
            f.http_error(int(params.get("status", 400)), operation=operation, times=times)
        elif kind == "fault":
            f.soap_fault("Server.Injected", "injected fault", operation=operation, times=times)
        elif kind in ("drop_before", "drop_after"):
            f.drop(operation=operation, after_apply=kind == "drop_after", times=times)
        elif kind == "duplicate":
            f.duplicate(operation=operation, times=times)
        else:
            raise ValueError(f"unsupported fault {kind!r}")

    def requests(self, operation: str | None = None) -> int:
        return self.handle.service.requests(operation)

    def journal(self) -> list[tuple[str, str | None]]:
        return list(self.handle.service.journal)

    def effects(self, ref: str) -> int:
        return self.handle.engine.applied[ref]

    def secrets(self) -> list[str]:
        return [self.handle.password]


class TreasuryAdapter:
    system: ClassVar[str] = "treasury"
    fetch_operation: ClassVar[str] = "GetStatusReports"
    submit_operation: ClassVar[str | None] = "SubmitPaymentBatch"
    query_operation: ClassVar[str | None] = "QueryBatchStatus"
    page_size: ClassVar[int] = 5
    bad_configs: ClassVar[Mapping[str, Mapping[str, object]]] = {
        "wrong_password": {"password": "not-the-treasury-password"},
        "unknown_user": {"username": "intruder"},
        "plain_http_to_remote_host": {"endpoint": "http://treasury.example.com/soap/treasury"},
        "zero_timeout": {"read_timeout": 0},
    }

    def __init__(self, sandbox: TreasurySandboxAdapter, workdir: Path, **overrides: Any) -> None:
        o: dict[str, Any] = {"endpoint": sandbox.url, "username": sandbox.handle.username,
                             "password": sandbox.handle.password, "read_timeout": sandbox.read_timeout}
        o.update(overrides)
        # PasswordText on purpose: the strictest redaction test (the secret is in the envelope)
        token = UsernameTokenConfig(o.pop("username"), o.pop("password"), digest=False)
        self.client = TreasuryClient(username_token=token, archive=Archive(workdir / "archive"),
                                     connect_timeout=2.0, retries=3, backoff=0.01, **o)

    def check(self) -> None:
        try:
            self.client.query_batch("CHECK-CONNECTIVITY")
        except NotFound:
            return  # authenticated and answered

    def fetch_all(self) -> list[Hashable]:
        return [r.serial for r in self.client.status_reports(page_size=self.page_size)]

    def submit(self, serial: str) -> BatchAck:
        return self.client.submit_batch(serial, pain001_for(serial))


def treasury_sandbox() -> TreasurySandboxAdapter:
    """A fresh treasury sandbox (a context manager that stops it)."""
    return TreasurySandboxAdapter()


adapter_factory = TreasuryAdapter
sandbox_factory = treasury_sandbox
