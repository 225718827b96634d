"""The ledger_verify DAG's step: check every ledger invariant and the hash chain, fail loudly."""

from __future__ import annotations

from typing import Any

from cvhub.settings import Settings
from plugins.cvhub_flows.ledger_session import ledger_for


class LedgerVerifyFailed(Exception):
    """An invariant or the hash chain does not hold: a person must look now (never retried)."""


def verify_ledger(settings: Settings) -> dict[str, Any]:
    """Run ``ledger.verify`` on the configured ledger; raise with the first violation."""
    report = ledger_for(settings).verify()
    if not report.ok:
        raise LedgerVerifyFailed(f"ledger verify FAILED: {report.first_violation or report.summary}")
    return {"ok": True, "entries": report.entries, "summary": report.summary}
