"""Reconciliation: expected money movements against bank statement lines, and the finance package.

- ``model``: expected items, match configuration, matches, exception codes with next actions;
- ``engine``: the pure three-pass matcher (``match_statement``), no I/O;
- ``models`` / ``service``: storage (migration ``0002_recon``) and the transactional run that
  settles the ledger (``run_statement``, ``register_expected``, ``record_payment_statuses``);
- ``package``: the daily CSV / XLSX / HTML / PDF / manifest package (``build_packages``);
- ``statement_json``: canonical statement JSON, the input of ``cvhub recon run``;
- ``cli``: ``cvhub recon run|report``.

Lives in ``ledger/``: it must never import connectors or mappings (statements arrive as
``ledger.canonical.Statement``). Delivery over SFTP is ``connectors.finance_delivery``.
"""

from ledger.recon.engine import MatchOutcome, match_statement
from ledger.recon.model import EXCEPTION_CODES, NEXT_ACTION, RULES, ExpectedItem, MatchConfig

__all__ = ["EXCEPTION_CODES", "NEXT_ACTION", "RULES", "ExpectedItem", "MatchConfig", "MatchOutcome",
           "match_statement"]
