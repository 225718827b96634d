"""ledger_verify: every ledger invariant and the hash chain, daily; fails loudly on any violation."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from plugins.cvhub_flows.dag_defaults import DAILY, DEFAULT_ARGS, START_DATE


@dag(
    schedule=DAILY,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cvhub", "ledger", "daily"],
    default_args=DEFAULT_ARGS,
    doc_md="""Runs `ledger.verify` (conservation, single holder, balanced postings, quota, payable
backing, financing/registration, settled vouchers matched, hash chain). A violation fails the run at
once with the entry and field; nothing retries it. Same check as `cvhub ledger verify`.""",
)
def ledger_verify() -> None:
    @task
    def verify() -> dict[str, Any]:
        from plugins.cvhub_flows.runtime import run_step
        from plugins.cvhub_flows.verify import verify_ledger

        return run_step("ledger_verify", lambda c: verify_ledger(c.settings))

    verify()


ledger_verify()
