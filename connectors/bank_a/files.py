"""Bank A's SFTP files: pain.001 batches in, pain.002 reports and camt.053 statements out.

Directory layout on bank A's server (see ``sandbox/bank_a.py``)::

    inbox/pain001/<serial>.xml      we deliver payment batches (temp name, rename, .sha256, .done)
    outbox/pain002/*.pain002.xml    the bank's status reports
    outbox/statements/camt053_*.xml the bank's statements

Every transfer goes through ``connectors.sftp.SftpClient`` (pinned host key, atomic, archived raw
before processing, each file processed once). The endpoint must use ``completeness="marker"``
(bank A writes ``.done`` markers and ``.sha256`` sidecars). Parsing is the caller's handler
(``mappings``), never done here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.errors import ValidationFailed
from connectors.sftp import FetchedFile, FetchReport, SftpClient, Upload

BANK_A_DIRS = {
    "pain001": "inbox/pain001",
    "pain002": "outbox/pain002",
    "statements": "outbox/statements",
}
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,34}$")


class BankAFiles:
    """File exchange with bank A over an open ``SftpClient`` (which needs archive + record)."""

    def __init__(self, sftp: SftpClient, *, root: str = ".") -> None:
        self.sftp = sftp
        self.root = root.rstrip("/") or "."

    def _dir(self, key: str) -> str:
        return f"{self.root}/{BANK_A_DIRS[key]}"

    def send_payment_file(self, serial: str, pain001: bytes) -> Upload:
        """Deliver a pain.001 as ``<serial>.xml``; idempotent (same bytes again = "unchanged")."""
        if not _SERIAL.match(serial):
            raise ValidationFailed(f"serial {serial!r} is not a valid file stem", system="bank_a",
                                   operation="send_payment_file", ref=serial)
        return self.sftp.deliver(pain001, f"{serial}.xml", remote_dir=self._dir("pain001"))

    def fetch_statements(self, local_dir: Path, handler: Callable[[FetchedFile], Any]) -> FetchReport:
        """Each new camt.053 statement file, exactly once, to ``handler``."""
        return self.sftp.fetch_new(local_dir, handler, remote_dir=self._dir("statements"),
                                   names=lambda n: n.startswith("camt053_") and n.endswith(".xml"))

    def fetch_status_reports(self, local_dir: Path, handler: Callable[[FetchedFile], Any]) -> FetchReport:
        """Each new pain.002 status report, exactly once, to ``handler``."""
        return self.sftp.fetch_new(local_dir, handler, remote_dir=self._dir("pain002"),
                                   names=lambda n: n.endswith(".pain002.xml"))
