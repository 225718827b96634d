"""The ledger_verify DAG's step: the hash chain, the state against the journal replayed, every
ledger invariant, and every store derived from the journal (``flow_verify.store_checks``); fail
loudly."""

from __future__ import annotations

from typing import Any

from cvhub.settings import Settings
from plugins.cvhub_flows.flow_verify import store_checks
from plugins.cvhub_flows.ledger_session import ledger_for


class LedgerVerifyFailed(Exception):
    """An invariant or the hash chain does not hold: a person must look now (never retried)."""


def verify_ledger(settings: Settings) -> dict[str, Any]:
    """Run ``ledger.verify`` with every store check on the configured ledger; raise with the first
    violation."""
    ledger = ledger_for(settings)
    report = ledger.verify(stores=store_checks(settings, ledger.engine))
    if not report.ok:
        raise LedgerVerifyFailed(f"ledger verify FAILED: {report.first_violation or report.summary}")
    return {"ok": True, "entries": report.entries, "summary": report.summary}
