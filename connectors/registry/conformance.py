"""Conformance declaration of the REST registry adapter (``connectors.testing`` protocol).

Test glue only: builds a ``RestRegistry`` against a running ``sandbox.registry.RegistrySandbox``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from connectors.archive import Archive
from connectors.registry.model import Registration, RegistrationRequest
from connectors.registry.rest_adapter import RestRegistry
from connectors.rest import RestConfig


class RegistryAdapter:
    system: ClassVar[str] = "registry"
    fetch_operation: ClassVar[str] = "list_by_grantor"
    submit_operation: ClassVar[str | None] = "register"
    query_operation: ClassVar[str | None] = "get_by_request"
    page_size: ClassVar[int] = 4
    bad_configs: ClassVar[Mapping[str, Mapping[str, object]]] = {
        "wrong_api_key": {"api_key": "reg-wrong"},
        "plain_http_to_remote_host": {"base_url": "http://zhongdeng-provider.example.com"},
        "credentials_in_url": {"base_url": "http://user:pw@127.0.0.1:1"},
        "no_attempts": {"max_attempts": 0},
    }

    def __init__(self, sandbox: Any, workdir: Path, **overrides: Any) -> None:
        from sandbox.rest_parties import OBLIGOR, enterprise

        self.sandbox = sandbox
        self.grantor = OBLIGOR
        self.funder = enterprise(900)
        settings: dict[str, Any] = dict(
            system="registry",
            base_url=sandbox.url,
            api_key=sandbox.api_key,
            connect_timeout=2.0,
            read_timeout=0.5,
            max_attempts=4,
            backoff_initial=0.01,
            backoff_max=0.05,
        )
        settings.update(overrides)
        self.registry = RestRegistry(
            RestConfig(**settings), archive=Archive(workdir / "archive"), page_size=self.page_size
        )

    def check(self) -> None:
        self.registry.check()

    def fetch_all(self) -> list[Hashable]:
        return [r.registration_no for r in self.registry.query_by_grantor(self.grantor.uscc)]

    def submit(self, serial: str) -> Registration:
        return self.registry.register(
            RegistrationRequest(
                request_no=serial,
                kind="TRANSFER",
                grantor_uscc=self.grantor.uscc,
                grantor_name=self.grantor.name,
                grantee_uscc=self.funder.uscc,
                grantee_name=self.funder.name,
                voucher_id=f"CV-{serial}",
                amount_minor=12_345_600,
                currency="CNY",
                term_months=12,
            )
        )


def registry_sandbox() -> Any:
    from sandbox.registry import RegistrySandbox

    return RegistrySandbox()


adapter_factory = RegistryAdapter
sandbox_factory = registry_sandbox
