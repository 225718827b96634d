"""What a running task hands its flow step: settings, business date, interval key, run time.

``run_step(name, fn)`` is the body of every task in ``dags/``: it reads the Airflow context of the
running task instance (data interval, params), builds a ``StepContext`` and calls ``fn(ctx)``
inside ``flow_step(name)`` (retriable errors propagate for Airflow's retries, everything else fails
at once with the reason). The business date comes from the data interval or
``params.business_date``, never from the wall clock; ``at`` is the end of the data interval, used
for audit timestamps. Settings are read from the environment of the worker (``Settings.from_env``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from cvhub.settings import Settings
from plugins.cvhub_flows.batches import interval_key
from plugins.cvhub_flows.dag_defaults import business_date
from plugins.cvhub_flows.failure import flow_step

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StepContext:
    settings: Settings
    on: date                 # the business date the run works on
    interval: str            # file-safe key of the data interval's start (batch files)
    at: datetime             # end of the data interval (UTC): audit timestamps
    params: Mapping[str, Any] = field(default_factory=dict)


def step_context(context: Mapping[str, Any]) -> StepContext:
    """A ``StepContext`` from an Airflow task context (``get_current_context()``)."""
    start = context.get("data_interval_start")
    end = context.get("data_interval_end")
    logical = context.get("logical_date")
    params = dict(context.get("params") or {})
    anchor = start or logical or end
    if anchor is None:
        raise ValueError("task context has neither a data interval nor a logical date")
    return StepContext(settings=Settings.from_env(),
                       on=business_date(data_interval_start=start, data_interval_end=end,
                                        logical_date=logical, params=params),
                       interval=interval_key(anchor), at=(end or anchor).astimezone(UTC), params=params)


def run_step(name: str, fn: Callable[[StepContext], T]) -> T:
    """Run one flow step for the current task instance (see the module docstring)."""
    from airflow.sdk import get_current_context

    with flow_step(name):
        return fn(step_context(get_current_context()))
