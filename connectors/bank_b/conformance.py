"""Conformance declaration of the Bank B connector (``connectors.testing`` protocol).

Test glue only: builds a ``BankBClient`` against a running ``sandbox.bank_b.BankBSandbox``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from canonical.clock import today
from connectors.archive import Archive
from connectors.bank_b.client import BankBClient, FinancingApplication, FinancingState
from connectors.rest import HmacSigner, RestConfig


class BankBAdapter:
    system: ClassVar[str] = "bank_b"
    fetch_operation: ClassVar[str] = "list_notices"
    submit_operation: ClassVar[str | None] = "submit_application"
    query_operation: ClassVar[str | None] = "query_application"
    page_size: ClassVar[int] = 4
    bad_configs: ClassVar[Mapping[str, Mapping[str, object]]] = {
        "wrong_signing_secret": {"signer": HmacSigner("bankb-key-1", "not-the-secret")},
        "unknown_key_id": {"signer_key_id": "bankb-key-9"},
        "no_signing": {"signer": None},
        "plain_http_to_remote_host": {"base_url": "http://openapi.bank-b.example.cn"},
        "negative_timeout": {"connect_timeout": -1},
        "untrusted_certificate": {"ca_bundle": None},
    }

    def __init__(self, sandbox: Any, workdir: Path, **overrides: Any) -> None:
        self.business_clock = sandbox.clock  # applications are dated by the bank's business day
        key_id = overrides.pop("signer_key_id", sandbox.key_id)
        settings: dict[str, Any] = dict(
            system="bank_b",
            base_url=sandbox.url,
            ca_bundle=sandbox.ca_bundle,
            signer=HmacSigner(key_id, sandbox.secret),
            connect_timeout=2.0,
            read_timeout=0.5,
            max_attempts=4,
            backoff_initial=0.01,
            backoff_max=0.05,
        )
        settings.update(overrides)
        self.client = BankBClient(
            RestConfig(**settings), archive=Archive(workdir / "archive"), page_size=self.page_size
        )

    def check(self) -> None:
        self.client.check()

    def fetch_all(self) -> list[Hashable]:
        return [n.notice_id for page in self.client.iter_notices() for n in page.notices]

    def submit(self, serial: str) -> FinancingState:
        from sandbox.rest_parties import enterprise

        sup = enterprise(7)
        return self.client.submit_financing(
            FinancingApplication(
                serial_no=serial,
                voucher_id=f"CV-{serial}",
                piece_id=f"CV-{serial}-1",
                applicant_uscc=sup.uscc,
                applicant_name=sup.name,
                applicant_account=sup.account,
                applicant_cnaps=sup.cnaps,
                amount_minor=50_000_000,
                currency="CNY",
                maturity_date=today(self.business_clock) + timedelta(days=90),
                registration_no="20261128000000000001",
            )
        )


def bank_b_sandbox() -> Any:
    from sandbox.bank_b import BankBSandbox

    return BankBSandbox(https=True)  # a bank speaks TLS: verified against the sandbox's private CA


adapter_factory = BankBAdapter
sandbox_factory = bank_b_sandbox
