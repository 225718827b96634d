"""financing_<bank>: one DAG per configured bank (plugins/cvhub_flows/banks.py): applications
for registered pending financings go to the bank; its decisions come back to the ledger."""

from __future__ import annotations

from airflow.sdk import DAG, task

from plugins.cvhub_flows.banks import BANKS, BankConfig
from plugins.cvhub_flows.dag_defaults import (
    DEFAULT_ARGS,
    EVERY_15_MINUTES,
    FINANCINGS,
    START_DATE,
    business_date_param,
)


def financing_dag(cfg: BankConfig) -> DAG:
    with DAG(
        dag_id=f"financing_{cfg.name}",
        schedule=EVERY_15_MINUTES,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["cvhub", "financing", cfg.name],
        default_args=DEFAULT_ARGS,
        params=business_date_param(),
        doc_md=f"""{cfg.title}. Every 15 minutes: each pending financing funded by
{cfg.funder_name} that has a registry registration is sent to the bank under a serial derived
from its financing id (connection `{cfg.financing_conn_id}`); the bank's decisions are applied to
the ledger (`disburse` / `reject_financing`). A refused application goes to the quarantine.""",
    ) as dag:

        @task(inlets=[FINANCINGS])
        def submit() -> dict[str, int]:
            from plugins.cvhub_flows import financing
            from plugins.cvhub_flows.runtime import run_step

            return run_step(f"financing_{cfg.name}.submit", lambda c: financing.submit_applications(
                c.settings, cfg.name, on=c.on, at=c.at))

        @task(outlets=[FINANCINGS])
        def decisions() -> dict[str, int]:
            from plugins.cvhub_flows import financing
            from plugins.cvhub_flows.runtime import run_step

            return run_step(f"financing_{cfg.name}.decisions", lambda c: financing.collect_decisions(
                c.settings, cfg.name, on=c.on, at=c.at))

        submit() >> decisions()
    return dag


for _bank in BANKS:
    financing_dag(_bank)
