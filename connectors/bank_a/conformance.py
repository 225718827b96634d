"""Conformance declaration of bank A's financing connector (``connectors.testing`` protocol).

Test glue only: builds a ``BankAFinancingClient`` against a running bank A sandbox and exposes
the sandbox through the kit's ``ConformanceSandbox`` protocol. The fetch is the disbursement
notice feed; the state-changing request is a financing application. Imported by tests and
``cvhub connector check``; never by production code.
"""

from __future__ import annotations

import hashlib
import itertools
import tempfile
from collections.abc import Hashable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from canonical.clock import today
from connectors.archive import Archive
from connectors.bank_a.financing import BankAFinancingClient, FinancingAck, FinancingRequest
from connectors.errors import NotFound
from connectors.soap import UsernameTokenConfig
from connectors.treasury.conformance import FAULTS, TreasurySandboxAdapter


def request_for(serial: str, on: date) -> FinancingRequest:
    """The same application for the same serial and business day ``on``; one piece per serial."""
    return FinancingRequest(
        serial=serial, voucher_id="V-CONF", piece_id=f"P-{serial}"[:64], obligor_uscc="91310000MA1FL8L972",
        seller_uscc="91110108MA01ABCD1X", seller_name="Supplier Co", seller_account="6222000033334444",
        amount_minor=100_000_00, currency="CNY", annual_rate=Decimal("0.0385"),
        maturity_date=on + timedelta(days=120), registration_no=f"ZD-{serial}"[:64],
    )


class BankASandboxAdapter(TreasurySandboxAdapter):
    """Bank A's sandbox through the ``ConformanceSandbox`` protocol (same fault vocabulary)."""

    supported_faults: frozenset[str] = FAULTS

    def __init__(self, read_timeout: float = 0.5) -> None:
        from sandbox.bank_a import start_bank_a_sandbox

        self.read_timeout = read_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="cvhub-bank-a-conf-")
        self.handle = start_bank_a_sandbox(sftp_root=Path(self._tmp.name), decision_delay=timedelta(0),  # type: ignore[assignment]
                                           disbursement_delay=timedelta(0), tick=None)
        self._seeds = itertools.count(1)

    def __exit__(self, *exc: object) -> None:
        self.handle.stop()
        self._tmp.cleanup()

    def reset(self) -> None:
        self.bank.desk.reset()
        self.handle.service.reset()

    @property
    def bank(self) -> Any:
        return self.handle

    def seed(self, count: int) -> None:
        from sandbox.bank_a import Financing

        desk = self.bank.desk
        for _ in range(count):
            serial = f"SEED-{next(self._seeds):06d}"
            r = request_for(serial, today(desk.clock))
            desk.submit(Financing(
                serial=serial, sha256=hashlib.sha256(serial.encode()).hexdigest(), voucher_id=r.voucher_id,
                piece_id=r.piece_id, seller_name=r.seller_name, seller_account=r.seller_account,
                amount_minor=r.amount_minor, currency=r.currency, rate=r.annual_rate, day_count=r.day_count,
                recourse=r.recourse, maturity=r.maturity_date, registration_no=r.registration_no,
                received_at=desk.clock()))
        desk.advance()

    def effects(self, ref: str) -> int:
        return int(self.bank.desk.applied[ref])


class BankAAdapter:
    system: ClassVar[str] = "bank_a"
    fetch_operation: ClassVar[str] = "GetDisbursementNotices"
    submit_operation: ClassVar[str | None] = "SubmitFinancing"
    query_operation: ClassVar[str | None] = "QueryFinancing"
    page_size: ClassVar[int] = 5
    bad_configs: ClassVar[Mapping[str, Mapping[str, object]]] = {
        "wrong_password": {"password": "not-the-bank-password"},
        "plain_http_to_remote_host": {"endpoint": "http://bank-a.example.com/soap/financing"},
        "zero_timeout": {"read_timeout": 0},
    }

    def __init__(self, sandbox: BankASandboxAdapter, workdir: Path, **overrides: Any) -> None:
        self.business_clock = sandbox.bank.desk.clock  # applications are dated by the bank's business day
        o: dict[str, Any] = {"endpoint": sandbox.url, "username": sandbox.handle.username,
                             "password": sandbox.handle.password, "read_timeout": sandbox.read_timeout}
        o.update(overrides)
        token = UsernameTokenConfig(o.pop("username"), o.pop("password"), digest=True)
        self.client = BankAFinancingClient(username_token=token, archive=Archive(workdir / "archive"),
                                           connect_timeout=2.0, retries=3, backoff=0.01, **o)

    def check(self) -> None:
        try:
            self.client.query_financing("CHECK-CONNECTIVITY")
        except NotFound:
            return

    def fetch_all(self) -> list[Hashable]:
        return [n.serial for n in self.client.disbursement_notices(page_size=self.page_size)]

    def submit(self, serial: str) -> FinancingAck:
        return self.client.submit_financing(request_for(serial, today(self.business_clock)))


def bank_a_sandbox() -> BankASandboxAdapter:
    """A fresh bank A sandbox (a context manager that stops it)."""
    return BankASandboxAdapter()


adapter_factory = BankAAdapter
sandbox_factory = bank_a_sandbox
