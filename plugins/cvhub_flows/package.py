"""finance_package flow: the day's reconciled package (CSV, XLSX, summary, manifest) -> SFTP.

1. ``build``: ``ledger.recon.package.build_packages`` for the business date into
   ``<data_dir>/packages/<date>/`` (deterministic content: rebuilding the same day gives the same
   bytes for the same ledger state); returns the manifest's path and hash.
2. ``deliver``: ``connectors.finance_delivery.deliver_package`` uploads every file of the manifest
   into ``<outbox>/<date>/`` on the finance SFTP server (connection ``cvhub_finance_sftp``), the
   manifest last, each upload-then-rename and idempotent (same bytes again: nothing; different
   bytes: a versioned name, never an overwrite).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

from connectors.archive import Archive
from cvhub.settings import Settings
from plugins.cvhub_flows.batches import read_batch
from plugins.cvhub_flows.hooks import FinanceDeliveryHook
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session


def package_dir(settings: Settings, on: date) -> Path:
    return settings.data_dir / "packages" / on.isoformat()


def build(settings: Settings, *, on: date) -> dict[str, Any]:
    """Step 1: write the day's package(s); returns the (first) manifest reference and totals."""
    from ledger.recon.package import build_packages

    out = package_dir(settings, on)
    with ledger_session(settings) as s:
        results = build_packages(s, on, out, ledger=ledger_for(settings))
    if not results:
        raise RuntimeError(f"no finance package produced for {on}")
    first = results[0]
    data = first.manifest.read_bytes()
    return {"path": str(first.manifest), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "directory": str(first.directory), "files": len(first.files), "packages": len(results),
            "totals": json.loads(json.dumps(first.totals, default=str))}


def deliver(settings: Settings, ref: dict[str, Any], *, on: date) -> dict[str, Any]:
    """Step 2: deliver the package directory (``connectors.finance_delivery``), manifest last."""
    from connectors.finance_delivery import deliver_package
    from connectors.sftp import SftpClient

    read_batch(ref)  # the manifest is the one built: same bytes as referenced
    with SftpClient(FinanceDeliveryHook().get_settings(), archive=Archive(settings.archive_dir)) as client:
        report = deliver_package(client, Path(ref["directory"]))
    statuses = [f.status for f in report.files]
    return {"remote_dir": report.remote_dir, "files": len(statuses),
            "uploaded": statuses.count("uploaded"), "unchanged": statuses.count("unchanged"),
            "versioned": statuses.count("versioned")}
