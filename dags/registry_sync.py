"""registry_sync: registry (中登网) query + registration before financing; cancellation after clearing."""

from __future__ import annotations

from airflow.sdk import dag, task

from plugins.cvhub_flows.dag_defaults import (
    DEFAULT_ARGS,
    EVERY_15_MINUTES,
    FINANCINGS,
    START_DATE,
    business_date_param,
)


@dag(
    schedule=EVERY_15_MINUTES,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cvhub", "registry", "financing"],
    default_args=DEFAULT_ARGS,
    params=business_date_param(),
    doc_md="""Every 15 minutes: for each pending financing without a registration, query the registry
by grantor (a live registration by someone else over the voucher rejects the financing), register
the assignment and record the registration number in the ledger. With the manual adapter the
packet waits in `cvhub registry` until an operator confirms it; the financing waits too. Then
cancels the registrations of settled vouchers. Connection `cvhub_registry`.""",
)
def registry_sync() -> None:
    @task(outlets=[FINANCINGS])
    def register() -> dict[str, int]:
        from plugins.cvhub_flows import financing
        from plugins.cvhub_flows.runtime import run_step

        return run_step("registry_sync.register",
                        lambda c: financing.register_financings(c.settings, on=c.on, at=c.at))

    @task
    def cancel_settled() -> dict[str, int]:
        from plugins.cvhub_flows import financing
        from plugins.cvhub_flows.runtime import run_step

        return run_step("registry_sync.cancel_settled",
                        lambda c: financing.cancel_settled(c.settings, at=c.at))

    register() >> cancel_settled()


registry_sync()
