"""What every cvhub DAG shares: start date, schedules, retry policy, business date, Assets.

- Retries: up to ``RETRIES`` with exponential backoff, and only for retriable errors
  (``connectors.errors.RetriableError``, timeouts, dropped connections); the retry policy fails any
  other exception at once (``flow_step`` already turns fatal errors into ``AirflowFailException``).
- Time: schedules are UTC cron data intervals; a task reads its business date from the run's data
  interval (``business_date(...)``), never from the wall clock, so a rerun of the same interval does
  the same work. A manual run may name the business date in its params (the demo moves it forward).
- Assets link producers to consumers (e.g. statements ingested -> finance package).

Pure declarations: no I/O, nothing read from the environment, safe at DAG parse time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronDataIntervalTimetable, Param
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from connectors.errors import RetriableError

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
RETRIES = 4

RETRY_POLICY = ExceptionRetryPolicy(
    rules=[RetryRule(exception=[RetriableError, TimeoutError, ConnectionError], action=RetryAction.RETRY,
                     reason="retriable: remote system busy or unreachable")],
    default=RetryAction.FAIL,
)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "cvhub",
    "retries": RETRIES,
    "retry_delay": timedelta(seconds=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "retry_policy": RETRY_POLICY,
}

def business_date_param() -> dict[str, Param]:
    """The ``business_date`` param every dated DAG takes (a manual run may name the date; the demo
    moves it forward). A fresh ``Param`` per DAG: Airflow keeps per-DAG state in them."""
    return {"business_date": Param(None, type=["null", "string"], format="date",
                                   description="Override the business date (default: the interval's day).")}

DAILY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
EVERY_15_MINUTES = CronDataIntervalTimetable("*/15 * * * *", timezone="UTC")

# Assets: one URI per kind of data a flow produces for another.
VOUCHERS = Asset("cvhub://ledger/vouchers")
FINANCINGS = Asset("cvhub://ledger/financings")
CLEARING = Asset("cvhub://ledger/clearing")
AP_PAYABLES = Asset("cvhub://erp/ap-payables")
GL_JOURNAL = Asset("cvhub://erp/gl-journal")
RECONCILED = Asset("cvhub://recon/matches")
FINANCE_PACKAGE = Asset("cvhub://finance/package")


def statements_asset(bank: str) -> Asset:
    return Asset(f"cvhub://bank/{bank}/statements")


def business_date(
    *,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    logical_date: datetime | None = None,
    params: dict[str, Any] | None = None,
) -> date:
    """The business date a run works on: ``params['business_date']`` if given, else the day its data
    interval starts (a daily run covers [D, D+1) and works on D), else the logical date's day."""
    explicit = (params or {}).get("business_date")
    if explicit:
        return date.fromisoformat(str(explicit))
    if data_interval_start is not None and data_interval_end is not None \
            and data_interval_end > data_interval_start:
        return data_interval_start.astimezone(UTC).date()
    anchor = logical_date or data_interval_start
    if anchor is None:
        raise ValueError("run has neither a data interval nor a logical date")
    return anchor.astimezone(UTC).date()


def logical_date_for(day: date) -> datetime:
    """The logical date that makes a manual ``dag.test()`` of a DAILY DAG cover [day, day + 1)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
