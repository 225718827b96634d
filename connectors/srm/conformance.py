"""Conformance declaration of the SRM connector (``connectors.testing`` protocol), for its sandbox.

Test glue only: builds an ``SrmClient`` against a running ``sandbox.srm.SrmSandbox``. Imported by
tests and ``cvhub connector check srm``; never by production code.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from connectors.archive import Archive
from connectors.rest import RestConfig
from connectors.srm.client import SrmClient, WriteBack


class SrmAdapter:
    system: ClassVar[str] = "srm"
    fetch_operation: ClassVar[str] = "list_payables"
    submit_operation: ClassVar[str | None] = "write_back_voucher"
    query_operation: ClassVar[str | None] = "get_payable"
    page_size: ClassVar[int] = 5
    bad_configs: ClassVar[Mapping[str, Mapping[str, object]]] = {
        "wrong_token": {"bearer_token": "srm-not-the-token"},
        "plain_http_to_remote_host": {"base_url": "http://srm.example.com"},
        "zero_timeout": {"read_timeout": 0},
        "two_credentials": {"api_key": "k"},
    }

    def __init__(self, sandbox: Any, workdir: Path, **overrides: Any) -> None:
        self.sandbox = sandbox
        settings: dict[str, Any] = dict(
            system="srm",
            base_url=sandbox.url,
            bearer_token=sandbox.token,
            connect_timeout=2.0,
            read_timeout=0.5,
            max_attempts=4,
            backoff_initial=0.01,
            backoff_max=0.05,
        )
        settings.update(overrides)
        self.client = SrmClient(
            RestConfig(**settings), archive=Archive(workdir / "archive"), page_size=self.page_size
        )

    def check(self) -> None:
        self.client.check()

    def fetch_all(self) -> list[Hashable]:
        return [r["payable_id"] for page in self.client.iter_pages() for r in page.records]

    def submit(self, serial: str) -> WriteBack:
        if self.sandbox.payable(serial) is None:
            self.sandbox.add_payable(payable_id=serial)
        return self.client.write_back(serial, f"CV{serial}", "ISSUED")


def srm_sandbox() -> Any:
    """A fresh SRM sandbox (a context manager that starts and stops it)."""
    from sandbox.srm import SrmSandbox

    return SrmSandbox()


adapter_factory = SrmAdapter
sandbox_factory = srm_sandbox
