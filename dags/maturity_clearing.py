"""maturity_clearing: vouchers due -> clearing instructions -> pain.001 to the treasury -> pain.002."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from plugins.cvhub_flows.dag_defaults import CLEARING, DAILY, DEFAULT_ARGS, START_DATE, business_date_param


@dag(
    schedule=DAILY,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["cvhub", "clearing", "treasury", "daily"],
    default_args=DEFAULT_ARGS,
    params=business_date_param(),
    doc_md="""Daily: opens clearing for every accepted voucher due (one instruction per live piece,
payee = holder), renders the open instructions as pain.001.001.09 batches per payer account
(deterministic MsgId), submits each batch to the treasury (connection `cvhub_treasury`, serial =
MsgId; one mapped task per batch), marks them sent, then reads each sent batch's pain.002: rejected
transactions are marked returned and raised as RETURN exceptions. Settlement comes from statements.""",
)
def maturity_clearing() -> None:
    @task
    def open_due() -> dict[str, int]:
        from plugins.cvhub_flows import clearing
        from plugins.cvhub_flows.runtime import run_step

        return run_step("maturity_clearing.open_due", lambda c: clearing.open_due(c.settings, on=c.on))

    @task
    def plan() -> list[dict[str, Any]]:
        from plugins.cvhub_flows import clearing
        from plugins.cvhub_flows.runtime import run_step

        return run_step("maturity_clearing.plan",
                        lambda c: clearing.plan_batches(c.settings, on=c.on, interval=c.interval))

    @task
    def send(batch: dict[str, Any]) -> dict[str, Any]:
        from plugins.cvhub_flows import clearing
        from plugins.cvhub_flows.runtime import run_step

        return run_step(f"maturity_clearing.send[{batch.get('message_id')}]",
                        lambda c: clearing.send_batch(c.settings, batch, on=c.on))

    @task(trigger_rule="none_failed", outlets=[CLEARING])
    def status() -> dict[str, int]:
        from plugins.cvhub_flows import clearing
        from plugins.cvhub_flows.runtime import run_step

        return run_step("maturity_clearing.status",
                        lambda c: clearing.check_status(c.settings, on=c.on, interval=c.interval))

    batches = plan()
    open_due() >> batches
    send.expand(batch=batches) >> status()


maturity_clearing()
