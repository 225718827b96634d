"""finance_package: the day's reconciled package (CSV, XLSX, summary, manifest) delivered over SFTP."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from plugins.cvhub_flows.dag_defaults import (
    DAILY,
    DEFAULT_ARGS,
    FINANCE_PACKAGE,
    RECONCILED,
    START_DATE,
    business_date_param,
)


@dag(
    schedule=DAILY,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cvhub", "recon", "finance", "daily"],
    default_args=DEFAULT_ARGS,
    params=business_date_param(),
    doc_md="""Daily: builds the finance package of the business date (recon CSV in UTF-8 with BOM,
XLSX with summary/matched/exceptions sheets, a one-page HTML and PDF summary with a chart, and
`manifest.json` with every file's SHA-256, rows and totals) and delivers it into
`<outbox>/<date>/` on the finance SFTP server (connection `cvhub_finance_sftp`), manifest last.
Re-delivery of the same day is idempotent (same bytes: nothing; else a versioned name).""",
)
def finance_package() -> None:
    @task(inlets=[RECONCILED])
    def build() -> dict[str, Any]:
        from plugins.cvhub_flows import package
        from plugins.cvhub_flows.runtime import run_step

        return run_step("finance_package.build", lambda c: package.build(c.settings, on=c.on))

    @task(outlets=[FINANCE_PACKAGE])
    def deliver(built: dict[str, Any]) -> dict[str, Any]:
        from plugins.cvhub_flows import package
        from plugins.cvhub_flows.runtime import run_step

        return run_step("finance_package.deliver", lambda c: package.deliver(c.settings, built, on=c.on))

    deliver(build())


finance_package()
