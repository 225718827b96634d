"""Replay handlers per flow, and the replay of quarantined items (``quarantine_replay`` DAG, CLI).

Each flow that quarantines items names here the function that re-applies one item with the same
idempotency keys as the first attempt (``module:function``, imported on first use so importing this
module stays cheap). A handler takes the ``QuarantineItem`` and returns a one-line resolution, or
raises if the item still fails. Holds no secrets; handlers resolve connections through the hooks.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cvhub.settings import Settings
from ledger import quarantine
from ledger.quarantine import QuarantineError, ReplayHandler
from plugins.cvhub_flows.banks import BANKS

HANDLERS: dict[str, str] = {
    "srm_payables": "plugins.cvhub_flows.srm:replay_payable",
    "erp_ap_import": "plugins.cvhub_flows.erp:replay_ap_record",
    **{f"statements_{b.name}": "plugins.cvhub_flows.statements:replay_statement" for b in BANKS},
    "financing": "plugins.cvhub_flows.financing:replay_financing",
    "registry_sync": "plugins.cvhub_flows.financing:replay_registration",
    "registry_recon": "plugins.cvhub_flows.financing:replay_registry_finding",
}


def handler_for(flow: str) -> ReplayHandler:
    """The replay handler of ``flow``; QuarantineError('no_handler') if the flow has none."""
    target = HANDLERS.get(flow)
    if target is None:
        raise QuarantineError("no_handler", f"flow {flow!r} has no replay handler "
                                            f"(known: {', '.join(sorted(HANDLERS))})")
    module, _, attr = target.partition(":")
    try:
        fn: ReplayHandler = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise QuarantineError("no_handler", f"flow {flow!r}: handler {target} unavailable: {e}") from e
    return fn


def replay_items(settings: Settings, *, item_ids: Sequence[int], flow: str | None,
                 at: datetime) -> dict[str, Any]:
    """Replay the given items (or every open item, of ``flow`` if given), one at a time.

    Returns counts and, per failed item, the reason; never raises for an item that still fails.
    """
    from plugins.cvhub_flows.ledger_session import ledger_session

    def scope() -> Any:
        return ledger_session(settings)

    with scope() as s:
        ids = list(item_ids) or [i.id for i in quarantine.list_items(s, status="open", flow=flow,
                                                                     limit=1_000_000)]
        flows = {i: quarantine.get(s, i).flow for i in ids}
    counts: dict[str, Any] = {"replayed": 0, "already_replayed": 0, "failed": 0, "errors": {}}
    for item_id in sorted(ids):
        try:
            outcome = quarantine.replay(scope, item_id, handler_for(flows[item_id]), at=at)
            counts[outcome.result] += 1
        except QuarantineError as e:
            counts["failed"] += 1
            counts["errors"][str(item_id)] = str(e)
    return counts
