"""statements_<bank>: one DAG per configured bank (plugins/cvhub_flows/banks.py): the day's
statement files over SFTP, each reconciled against the ledger's expected movements."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

from plugins.cvhub_flows.banks import BANKS, BankConfig
from plugins.cvhub_flows.dag_defaults import (
    CLEARING,
    DAILY,
    DEFAULT_ARGS,
    RECONCILED,
    START_DATE,
    statements_asset,
)


def statements_dag(cfg: BankConfig) -> DAG:
    with DAG(
        dag_id=f"statements_{cfg.name}",
        schedule=DAILY,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["cvhub", "statements", "recon", cfg.name],
        default_args=DEFAULT_ARGS,
        doc_md=f"""{cfg.title}. Daily: fetches every new complete `{cfg.statement_format}` statement
file from `{cfg.statement_dir}` on the bank's SFTP server (connection `{cfg.sftp_conn_id}`, pinned
host key, each file once), then reconciles each file in its own mapped task: statements are checked
(balances, sequence) and matched against open clearing instructions and expected disbursements;
matches settle the ledger. A file that fails its checks goes to the quarantine whole.""",
    ) as dag:

        @task(inlets=[CLEARING])
        def fetch() -> list[dict[str, Any]]:
            from plugins.cvhub_flows import statements
            from plugins.cvhub_flows.runtime import run_step

            return run_step(f"statements_{cfg.name}.fetch", lambda c: statements.fetch_statements(
                c.settings, cfg.name, interval=c.interval))

        @task
        def reconcile(ref: dict[str, Any]) -> dict[str, Any]:
            from plugins.cvhub_flows import statements
            from plugins.cvhub_flows.runtime import run_step

            return run_step(f"statements_{cfg.name}.reconcile[{ref.get('name')}]",
                            lambda c: statements.reconcile_file(c.settings, cfg.name, ref, at=c.at))

        @task(trigger_rule="none_failed", outlets=[statements_asset(cfg.name), RECONCILED])
        def summarise(results: Any) -> dict[str, int]:
            totals: dict[str, int] = {"files": 0}
            # Index by length: iterating Airflow's lazy XCom sequence probes one offset past the end,
            # which the task SDK logs as an error ("XCom not found") although nothing is wrong.
            for r in [results[i] for i in range(len(results))] if results else []:
                totals["files"] += 1
                for k, v in r.items():
                    if isinstance(v, int) and not isinstance(v, bool):
                        totals[k] = totals.get(k, 0) + v
            return totals

        summarise(reconcile.expand(ref=fetch()))
    return dag


for _bank in BANKS:
    statements_dag(_bank)
