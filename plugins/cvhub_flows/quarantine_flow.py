"""The quarantine_replay DAG's step: replay the requested items, fail if any still fails."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cvhub.settings import Settings
from plugins.cvhub_flows.replay import replay_items


class ReplayIncomplete(Exception):
    """Some requested items still fail; they stay open with the new reason."""


def replay_requested(settings: Settings, params: Mapping[str, Any], *, at: datetime) -> dict[str, Any]:
    """Replay ``params['item_ids']`` (or every open item of ``params['flow']``); returns counts."""
    ids = [int(i) for i in params.get("item_ids") or []]
    counts = replay_items(settings, item_ids=ids, flow=params.get("flow"), at=at)
    if counts["failed"]:
        raise ReplayIncomplete(f"{counts['failed']} item(s) still fail: {counts['errors']}")
    return {k: v for k, v in counts.items() if k != "errors"}
