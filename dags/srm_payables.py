"""srm_payables: SRM confirmed payables -> vouchers issued in the ledger -> voucher numbers back."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from plugins.cvhub_flows.dag_defaults import (
    DEFAULT_ARGS,
    EVERY_15_MINUTES,
    START_DATE,
    VOUCHERS,
    business_date_param,
)


@dag(
    schedule=EVERY_15_MINUTES,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cvhub", "srm", "ledger"],
    default_args=DEFAULT_ARGS,
    params=business_date_param(),
    doc_md="""Every 15 minutes: pull the SRM's confirmed payables since the saved cursor
(connection `cvhub_srm`), issue one voucher per payable in one ledger transaction (parties,
accounts and payables registered on the way; refused records go to the quarantine with the
reason), then write voucher numbers back to the SRM. Idempotent per data interval; replay with
`cvhub quarantine replay --flow srm_payables`.""",
)
def srm_payables() -> None:
    @task
    def fetch() -> dict[str, Any]:
        from plugins.cvhub_flows import srm
        from plugins.cvhub_flows.runtime import run_step

        return run_step("srm_payables.fetch", lambda c: srm.fetch_payables(c.settings, interval=c.interval))

    @task(outlets=[VOUCHERS])
    def issue(batch: dict[str, Any]) -> dict[str, Any]:
        from plugins.cvhub_flows import srm
        from plugins.cvhub_flows.runtime import run_step

        return run_step("srm_payables.issue", lambda c: srm.issue_vouchers(
            c.settings, batch, on=c.on, interval=c.interval, at=c.at))

    @task
    def write_back(vouchers: dict[str, Any]) -> dict[str, Any]:
        from plugins.cvhub_flows import srm
        from plugins.cvhub_flows.runtime import run_step

        return run_step("srm_payables.write_back", lambda c: srm.write_back(c.settings, vouchers, at=c.at))

    write_back(issue(fetch()))


srm_payables()
