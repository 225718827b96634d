"""Test glue only: the ERP connector as ``connectors.testing.conformance_suite`` drives it.

Builds an ``ErpConnector`` against a running ``sandbox.erp.ErpConformanceSandbox``. ``fetch_all``
pulls every AP export (retrying what is retriable, a bounded number of times, as an Airflow task
retry would); ``submit`` delivers one GL journal file named after the serial.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from connectors.archive import Archive
from connectors.erp.connector import ApExport, ErpConnector
from connectors.errors import RetriableError
from connectors.sftp import SftpClient, SftpSettings, Upload
from connectors.sftp_record import ProcessedFiles


def _unknown_host_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pub = Ed25519PrivateKey.generate().public_key()
    return pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _other_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()).decode()


class ErpAdapter:
    system: ClassVar[str] = "erp"
    fetch_operation: ClassVar[str] = "fetch"  # the listing + file reads of one run
    submit_operation: ClassVar[str | None] = "rename"
    query_operation: ClassVar[str | None] = "stat"
    page_size: ClassVar[int] = 2  # files per listing batch the kit reasons about
    bad_configs: ClassVar[Mapping[str, Mapping[str, object]]] = {
        "unpinned_host_key": {"host_keys": (_unknown_host_key(),)},
        "no_host_key_pinned": {"host_keys": ()},
        "wrong_client_key": {"private_key": _other_private_key()},
        "zero_timeout": {"op_timeout": 0},
        "traversal_inbox": {"inbox": "/erp/../../etc"},
    }
    max_runs = 5

    def __init__(self, sandbox: Any, workdir: Path, **overrides: Any) -> None:
        info = sandbox.info
        fields: dict[str, Any] = dict(
            system="erp", host=info.host, port=info.port, username=info.username,
            private_key=sandbox.private_key, host_keys=(info.host_key_line,),
            inbox="/erp/outbox", outbox="/erp/inbox", connect_timeout=3, auth_timeout=3, op_timeout=1.0)
        fields.update(overrides)
        self.workdir = workdir
        self.settings = SftpSettings(**fields)
        self.connector = ErpConnector(self.settings, archive=Archive(workdir / "archive"),
                                      record=ProcessedFiles(f"sqlite:///{workdir / 'connectors.sqlite'}"))

    def check(self) -> None:
        with SftpClient(self.settings) as c:
            c.list_complete()

    def fetch_all(self) -> list[Hashable]:
        keys: list[Hashable] = []

        def take(export: ApExport) -> None:
            keys.append((export.name, export.sha256))

        for run in range(1, self.max_runs + 1):
            try:
                self.connector.fetch_ap_exports(self.workdir / "local", take)
                return keys
            except RetriableError:
                if run == self.max_runs:
                    raise
        return keys

    def submit(self, serial: str) -> Upload:
        from ledger.canonical import GlJournal, GlLine, GlPosting

        lines = (GlLine("2202", 1000, 0, "CNY"), GlLine("2201", 0, 1000, "CNY"))
        journal = GlJournal(serial, "C001", date(2026, 11, 28),
                            (GlPosting(f"{serial}-1", "issuance", date(2026, 11, 28), "conformance", lines),))
        return self.connector.deliver_gl_journal(self.connector.render_gl_journal(journal), f"{serial}.csv")


def erp_sandbox() -> Any:
    import tempfile

    from sandbox.erp import ErpConformanceSandbox

    return ErpConformanceSandbox(Path(tempfile.mkdtemp(prefix="cvhub-erp-sandbox-")))


sandbox_factory = erp_sandbox
