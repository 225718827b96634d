"""quarantine_replay: replay quarantined items after their cause is fixed (manual trigger)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task

from plugins.cvhub_flows.dag_defaults import DEFAULT_ARGS, START_DATE


@dag(
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cvhub", "quarantine", "manual"],
    default_args=DEFAULT_ARGS,
    params={
        "item_ids": Param(None, type=["null", "array"], items={"type": "integer"},
                          description="Quarantine item ids; none = every open item (of `flow`)."),
        "flow": Param(None, type=["null", "string"], description="Only open items of this flow."),
    },
    doc_md="""Replays quarantined items through their flow's replay handler with the original
idempotency keys (a replayed item has no second effect). Trigger with
`{"item_ids": [3, 4]}` or `{"flow": "srm_payables"}`; see `cvhub quarantine list`.""",
)
def quarantine_replay() -> None:
    @task
    def replay() -> dict[str, Any]:
        from plugins.cvhub_flows.quarantine_flow import replay_requested
        from plugins.cvhub_flows.runtime import run_step

        return run_step("quarantine_replay", lambda c: replay_requested(c.settings, c.params, at=c.at))

    replay()


quarantine_replay()
