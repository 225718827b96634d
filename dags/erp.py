"""erp_ap_import and erp_gl_export: AP export files from the ERP in, GL journal files to the ERP out."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

from plugins.cvhub_flows.dag_defaults import (
    AP_PAYABLES,
    DAILY,
    DEFAULT_ARGS,
    EVERY_15_MINUTES,
    GL_JOURNAL,
    START_DATE,
    business_date_param,
)

with DAG(
    dag_id="erp_ap_import",
    schedule=EVERY_15_MINUTES,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cvhub", "erp", "ledger"],
    default_args=DEFAULT_ARGS,
    params=business_date_param(),
    doc_md="""Every 15 minutes: each new complete AP export file in the ERP's outbox (connection
`cvhub_erp`, `.done` marker and `.sha256` sidecar checked, each file once, archived raw) is mapped
(GB18030 or UTF-8 CSV) and its confirmed payables registered in the ledger; bad rows go to the
quarantine with file and line, the rest of the file flows.""",
):

    @task(outlets=[AP_PAYABLES])
    def import_ap() -> dict[str, int]:
        from plugins.cvhub_flows import erp
        from plugins.cvhub_flows.runtime import run_step

        return run_step("erp_ap_import.import_ap", lambda c: erp.import_ap_exports(
            c.settings, on=c.on, interval=c.interval, at=c.at))

    import_ap()


with DAG(
    dag_id="erp_gl_export",
    schedule=DAILY,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cvhub", "erp", "daily"],
    default_args=DEFAULT_ARGS,
    params=business_date_param(),
    doc_md="""Daily: the ledger journal entries of the business date that move money (issuance,
financing, clearing) as one balanced GL journal file (one posting per ledger entry), delivered to
the ERP's inbox (connection `cvhub_erp`); re-delivery of the same day is a no-op.""",
):

    @task(outlets=[GL_JOURNAL])
    def export_gl() -> dict[str, Any]:
        from plugins.cvhub_flows import erp
        from plugins.cvhub_flows.runtime import run_step

        return run_step("erp_gl_export.export_gl", lambda c: erp.export_gl(c.settings, on=c.on))

    export_gl()
